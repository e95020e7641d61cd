//! bf16 autocast scopes through the C++ shim in `csrc/autocast.cpp`.
//!
//! tch's `autocast` only covers CUDA, but libtorch's autocast also has a CPU dispatch key
//! whose lower-precision type can be bfloat16 (what `torch.autocast("cpu", torch.bfloat16)`
//! uses). Inside a scope, convolutions, linear layers and matmuls run in bf16 on bf16 copies
//! of the weights (cached for the scope); the master weights, their gradients and the
//! optimizer state stay float32. Autocast state is thread-local, so a scope covers exactly
//! the forward passes made on this thread until it drops; backward runs after it, as in
//! PyTorch.

use std::marker::PhantomData;
use std::os::raw::c_int;

use metarl_plugin_api::types::PluginError;
use tch::Device;

extern "C" {
    fn metarl_ppo_autocast_push(cuda: c_int) -> c_int;
    fn metarl_ppo_autocast_pop(cuda: c_int) -> c_int;
    fn metarl_ppo_autocast_is_enabled(cuda: c_int) -> c_int;
}

/// An active autocast scope (or a no-op when bf16 is off); leaving it restores the thread's
/// previous autocast state.
pub struct Scope {
    cuda: Option<c_int>,
    // Autocast state is per thread: a scope must be left on the thread that entered it.
    _not_send: PhantomData<*const ()>,
}

impl Scope {
    /// Enters bf16 autocast on `device` if `bf16`, else does nothing.
    pub fn enter(bf16: bool, device: Device) -> Result<Scope, PluginError> {
        if !bf16 {
            return Ok(Scope { cuda: None, _not_send: PhantomData });
        }
        let cuda = c_int::from(device.is_cuda());
        // SAFETY: the shim catches every C++ exception and only touches thread-local state.
        if unsafe { metarl_ppo_autocast_push(cuda) } != 0 {
            return Err(PluginError::failed("ppo: could not enable bf16 autocast in libtorch"));
        }
        Ok(Scope { cuda: Some(cuda), _not_send: PhantomData })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(cuda) = self.cuda {
            // SAFETY: pairs with the push in `enter` on the same thread (Scope is !Send).
            let rc = unsafe { metarl_ppo_autocast_pop(cuda) };
            debug_assert_eq!(rc, 0, "autocast pop without push");
        }
    }
}

/// Whether autocast is on for `device` on this thread (for tests).
pub fn is_enabled(device: Device) -> bool {
    // SAFETY: read-only query of thread-local state; exceptions are caught in the shim.
    unsafe { metarl_ppo_autocast_is_enabled(c_int::from(device.is_cuda())) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn scope_runs_matmuls_in_bf16_and_restores_state() {
        let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        assert!(!is_enabled(Device::Cpu));
        {
            let _outer = Scope::enter(true, Device::Cpu).unwrap();
            assert_eq!(x.linear::<Tensor>(&w, None).kind(), Kind::BFloat16);
            {
                let _inner = Scope::enter(true, Device::Cpu).unwrap();
            }
            assert!(is_enabled(Device::Cpu), "leaving a nested scope must keep the outer one");
        }
        assert!(!is_enabled(Device::Cpu));
        assert_eq!(x.linear::<Tensor>(&w, None).kind(), Kind::Float);
        let _off = Scope::enter(false, Device::Cpu).unwrap();
        assert!(!is_enabled(Device::Cpu));
    }
}
