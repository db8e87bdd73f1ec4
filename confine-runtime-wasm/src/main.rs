fn main() {
    confine_guest::serve(confine_runtime_wasm::Wasm::default())
}
