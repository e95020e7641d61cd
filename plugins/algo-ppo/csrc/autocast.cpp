// bf16 autocast for libtorch, which tch only exposes for CUDA.
//
// `push` saves the thread's autocast state for a device, turns autocast on with bf16 and
// nests; `pop` un-nests (clearing the cast cache at the outermost level, as
// `torch.autocast.__exit__` does) and restores the saved state. Autocast state is
// thread-local in libtorch, so the saved states are too. No exception crosses into Rust:
// every entry point returns 0 on success and -1 on failure.
#include <ATen/autocast_mode.h>

#include <vector>

namespace {

struct Saved {
    bool enabled;
    at::ScalarType dtype;
};

thread_local std::vector<Saved> saved;

at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }

}  // namespace

extern "C" int metarl_ppo_autocast_push(int cuda) {
    try {
        const at::DeviceType d = device_type(cuda);
        saved.push_back({at::autocast::is_autocast_enabled(d), at::autocast::get_autocast_dtype(d)});
        at::autocast::set_autocast_enabled(d, true);
        at::autocast::set_autocast_dtype(d, at::kBFloat16);
        at::autocast::increment_nesting();
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int metarl_ppo_autocast_pop(int cuda) {
    try {
        if (saved.empty()) return -1;
        const at::DeviceType d = device_type(cuda);
        const Saved s = saved.back();
        saved.pop_back();
        if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
        at::autocast::set_autocast_enabled(d, s.enabled);
        at::autocast::set_autocast_dtype(d, s.dtype);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int metarl_ppo_autocast_is_enabled(int cuda) {
    try {
        return at::autocast::is_autocast_enabled(device_type(cuda)) ? 1 : 0;
    } catch (...) {
        return -1;
    }
}
