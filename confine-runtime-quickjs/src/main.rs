fn main() {
    confine_guest::serve(confine_runtime_quickjs::QuickJs::default())
}
