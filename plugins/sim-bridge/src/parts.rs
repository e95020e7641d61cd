//! What the env plugins on the bridge share on their Rust side: checking a request's tasks,
//! and moving a reply's observation arrays into the ABI's buffers and trajectories.
//!
//! A server sends one array per observation part, named `<prefix>part<i>` in the space's
//! order: `part<i>` for the step's observations, `final_part<i>` for the true last
//! observations of the episodes that ended, `d<k>_part<i>` for demo `k`'s.

use metarl_plugin_api::abi_stable::std_types::RVec;
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::types::{Array, ArrayMut, Dtype, PluginError, Space};

use crate::Reply;

/// The task ids of `req` for a plugin (`plugin`) whose family `family` has `count` tasks:
/// all of them when the request names none. Refuses another family, trials other than 1,
/// and ids out of range.
pub fn request_tasks(req: &EnvRequest, plugin: &str, family: &str, count: usize) -> Result<Vec<u64>, PluginError> {
    if req.family.as_str() != family {
        return Err(PluginError::invalid(format!("unknown task family '{}' (valid: {family})", req.family)));
    }
    if req.trials != 1 {
        return Err(PluginError::invalid(format!("{plugin} plays one episode per sampled task (trials must be 1)")));
    }
    let tasks: Vec<u64> = if req.tasks.is_empty() { (0..count as u64).collect() } else { req.tasks.to_vec() };
    if let Some(t) = tasks.iter().find(|&&t| t as usize >= count) {
        return Err(PluginError::invalid(format!("task {t} is out of range (the {family} family has {count})")));
    }
    Ok(tasks)
}

/// Copies the reply's `<prefix>part<i>` arrays, `rows.len()` rows each, into rows `rows` of
/// the buffers `out` (one per part of `space`). `server` names the server in errors.
pub fn fill_parts(server: &str, space: &Space, reply: &Reply, prefix: &str, out: &mut [ArrayMut<'_>], rows: &[usize]) -> Result<(), PluginError> {
    if out.len() != space.parts.len() {
        return Err(PluginError::invalid(format!("observation buffers: {} parts, the space has {}", out.len(), space.parts.len())));
    }
    let bad = |msg: String| PluginError::failed(format!("{server} server: {msg}"));
    for (i, (part, dst)) in space.parts.iter().zip(out.iter_mut()).enumerate() {
        let src = reply.array(&format!("{prefix}part{i}")).map_err(bad)?;
        let k = part.numel();
        if src.len() != rows.len() * k {
            return Err(bad(format!("part '{}' has {} values, expected {}", part.name, src.len(), rows.len() * k)));
        }
        if rows.iter().any(|&r| dst.len() < (r + 1) * k) {
            return Err(PluginError::invalid(format!("observation buffer '{}' holds {} values, too few for row {:?}", part.name, dst.len(), rows.iter().max())));
        }
        match part.dtype {
            Dtype::U8 => {
                let dst = dst.u8().ok_or_else(|| PluginError::invalid(format!("part '{}' wants a u8 buffer", part.name)))?;
                if src.dtype != "u8" {
                    return Err(bad(format!("part '{}' is not u8", part.name)));
                }
                for (j, &r) in rows.iter().enumerate() {
                    dst[r * k..(r + 1) * k].copy_from_slice(&src.bytes[j * k..(j + 1) * k]);
                }
            }
            _ => {
                let dst = dst.f32().ok_or_else(|| PluginError::invalid(format!("part '{}' wants an f32 buffer", part.name)))?;
                let v = src.to_f32().ok_or_else(|| bad(format!("part '{}' is not float", part.name)))?;
                for (j, &r) in rows.iter().enumerate() {
                    dst[r * k..(r + 1) * k].copy_from_slice(&v[j * k..(j + 1) * k]);
                }
            }
        }
    }
    Ok(())
}

/// Demo `d`'s observations (`d<d>_part<i>`, `len + 1` rows per part) as the ABI's arrays.
pub fn demo_obs(server: &str, space: &Space, reply: &Reply, d: usize, len: usize) -> Result<RVec<Array>, PluginError> {
    let bad = |msg: String| PluginError::failed(format!("{server} server: {msg}"));
    let mut obs = RVec::new();
    for (i, part) in space.parts.iter().enumerate() {
        let b = reply.array(&format!("d{d}_part{i}")).map_err(bad)?;
        if b.len() != (len + 1) * part.numel() {
            return Err(bad(format!("demo part '{}' has the wrong size", part.name)));
        }
        obs.push(match part.dtype {
            Dtype::U8 => Array::from_slice(&b.bytes),
            _ => Array::from_slice(&b.to_f32().ok_or_else(|| bad(format!("demo part '{}' is not float", part.name)))?),
        });
    }
    Ok(obs)
}
