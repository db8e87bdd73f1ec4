fn main() {
    confine_guest::serve(confine_runtime_boa::Boa::default())
}
