//! C2F-ARM compute on this machine: acting latency (voxelise one camera's cloud, then both
//! levels' networks, cropping between them) and the time of one learning step (both levels,
//! online and target nets) for a batch, at a given network size.
//!
//! ```text
//! c2farm_speed [paper|cpu-small] [batch=8] [steps=3] [threads=1] [points=16384] [device=cpu] [grid=16] [dump=PATH]
//! ```
//! Prints one line per measurement; times are the median over `steps` after one warm-up.
//!
//! `dump=PATH` also writes, as raw little-endian f32, both levels' online parameters (in
//! their declaration order), two of the batch's level-0 grids and proprio rows, and both
//! levels' Q-values for them (level 0's translation, level 1's translation and
//! rotation/gripper), before the update is timed: `benches/c2farm_bound.py` loads them into its
//! PyTorch copy of the network and checks that it computes the same Q-values.

use std::time::Instant;

use metarl_algo_c2farm::c2f::{crop_bounds, voxel_centre};
use metarl_algo_c2farm::learn::{self, argmax_voxel, Batch, LearnConfig, Level, LevelBatch};
use metarl_algo_c2farm::net::{NetSize, QNet, Shape};
use metarl_algo_c2farm::rotation::BINS;
use metarl_algo_c2farm::voxel::voxelise;
use tch::{Device, Kind, Tensor};

const SCENE: [f64; 6] = [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6];
const PROPRIO: i64 = 11;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(steps: usize, device: Device, mut f: impl FnMut()) -> f64 {
    f();
    let runs = (0..steps)
        .map(|_| {
            let t = Instant::now();
            f();
            if let Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(runs)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let size = match arg(0, "paper").as_str() {
        "paper" => NetSize::PAPER,
        "cpu-small" => NetSize::CPU_SMALL,
        other => return Err(format!("unknown size '{other}' (paper or cpu-small)")),
    };
    let num = |i: usize, d: &str| arg(i, d).parse::<i64>().map_err(|e| format!("argument {}: {e}", i + 1));
    let (batch, steps, threads, points) = (num(1, "8")?, num(2, "3")? as usize, num(3, "1")?, num(4, "16384")?);
    let device = metarl_tch_common::parse_device(&arg(5, "cpu"))?;
    let grid = num(6, "16")?;
    let dump = match args.get(7).map(|a| a.strip_prefix("dump=")) {
        None => None,
        Some(Some(path)) => Some(path.to_string()),
        Some(None) => return Err(format!("argument 8: '{}' is not dump=PATH", args[7])),
    };
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let opts = (Kind::Float, device);

    let cfg = LearnConfig::default();
    let mut levels: Vec<Level> = (0..2)
        .map(|l| {
            let shape = Shape { grid, proprio: PROPRIO, context: 0, rot_grip: l == 1 };
            let net = |seed| QNet::new(shape, size, seed, device);
            Ok(Level::new(net(l as u64)?, net(10 + l as u64)?, &cfg))
        })
        .collect::<Result<_, String>>()?;
    let params: usize = levels.iter().map(|l| l.online.param_count()).sum();
    println!("size {size:?}, {params} parameters over 2 levels, {threads} thread(s), {points} points, device {device:?}");

    // A random scene inside the level-0 box.
    let lo = Tensor::from_slice(&SCENE[..3]).to_kind(Kind::Float).to_device(device);
    let span = Tensor::from_slice(&[1.0f32, 1.0, 1.0]).to_device(device);
    let cloud = |b: i64| Tensor::rand([b, points, 3], opts) * &span + &lo;
    let colours = |b: i64| Tensor::rand([b, points, 3], opts) * 2.0 - 1.0;
    let scene_bounds = |b: i64| Tensor::from_slice(&SCENE).to_kind(Kind::Float).to_device(device).view([1, 6]).expand([b, 6], false);

    // Acting: one observation through both levels.
    let (pts, rgb, proprio) = (cloud(1), colours(1), Tensor::rand([1, PROPRIO], opts));
    let act = time(steps, device, || {
        tch::no_grad(|| {
            let v0 = voxelise(&pts, &rgb, &scene_bounds(1), grid);
            let idx = argmax_voxel(&levels[0].online.forward(&v0, &proprio, None).trans);
            let i: Vec<i64> = Vec::try_from(idx.view([-1]).to_device(Device::Cpu)).unwrap_or_default();
            let c = voxel_centre(&SCENE, grid, [i[0], i[1], i[2]]);
            let b1 = Tensor::from_slice(&crop_bounds(c, 0.15)).to_kind(Kind::Float).to_device(device).view([1, 6]);
            let v1 = voxelise(&pts, &rgb, &b1, grid);
            let out = levels[1].online.forward(&v1, &proprio, None);
            let _ = out.rot_grip.map(|q| q.argmax(1, false).int64_value(&[0]));
        })
    });
    println!("act (voxelise + 2 levels, batch 1): {:.1} ms", act * 1e3);

    // Voxelisation alone, for a batch of observations and next observations.
    let (bp, bc) = (cloud(batch), colours(batch));
    let vox = time(steps, device, || {
        let _ = voxelise(&bp, &bc, &scene_bounds(batch), grid);
    });
    println!("voxelise, batch {batch}: {:.1} ms", vox * 1e3);

    // Learning: one step on a batch of pre-voxelised grids (the replay stores clouds; the
    // update voxelises 2 levels x (s, s'), timed above).
    let grids = || voxelise(&cloud(batch), &colours(batch), &scene_bounds(batch), grid);
    let int = |high: i64, n: i64| Tensor::randint(high, [batch, n], (Kind::Int64, device));
    let b = Batch {
        levels: (0..2).map(|_| LevelBatch { voxels: grids(), next_voxels: grids(), action: int(grid, 3) }).collect(),
        proprio: Tensor::rand([batch, PROPRIO], opts),
        next_proprio: Tensor::rand([batch, PROPRIO], opts),
        rot_grip: Tensor::cat(&[int(BINS, 3), int(2, 1)], 1),
        rewards: Tensor::rand([batch], opts).ge(0.5).to_kind(Kind::Float),
        discounts: Tensor::full([batch], 0.99, opts),
        weights: Tensor::ones([batch], opts),
        context: None,
    };
    let fwd = time(steps, device, || {
        tch::no_grad(|| {
            for (l, lb) in levels.iter().zip(&b.levels) {
                let _ = l.online.forward(&lb.voxels, &b.proprio, None);
            }
        })
    });
    println!("forward, 2 levels, batch {batch}: {:.1} ms", fwd * 1e3);
    if let Some(path) = dump {
        let (v, p) = (b.levels[0].voxels.narrow(0, 0, 2.min(batch)), b.proprio.narrow(0, 0, 2.min(batch)));
        let (q0, q1) = tch::no_grad(|| (levels[0].online.forward(&v, &p, None), levels[1].online.forward(&v, &p, None)));
        let mut floats = Vec::new();
        for l in &levels {
            floats.extend(metarl_tch_common::flat_params(&l.online.params));
        }
        for t in [&v, &p, &q0.trans, &q1.trans, q1.rot_grip.as_ref().ok_or("level 1 has no rotation head")?] {
            floats.extend(metarl_tch_common::to_vec_f32(t));
        }
        let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
        std::fs::write(&path, bytes).map_err(|e| format!("{path}: {e}"))?;
        println!("dumped parameters, inputs and Q-values to {path}");
    }
    let upd = time(steps, device, || {
        let _ = learn::step(&mut levels, &b, &cfg, None);
    });
    println!("update step, 2 levels, batch {batch}: {:.1} ms ({:.2} updates/s)", upd * 1e3, 1.0 / upd);
    Ok(())
}
