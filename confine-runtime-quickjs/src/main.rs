// An allocation past the host's memory cap ends the guest with a status the host reports as
// the memory limit.
#[global_allocator]
static ALLOC: confine_guest::GuestAllocator = confine_guest::GuestAllocator;

fn main() {
    confine_guest::serve(confine_runtime_quickjs::QuickJs::default())
}
