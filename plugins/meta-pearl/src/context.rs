//! Context: each task's most recent transitions (s, a, r), kept in a FIFO per task, and the
//! contexts drawn from them for the encoder.
//!
//! A transition is stored as the encoder reads it: the observation's image part as `u8`
//! (HWC), its `f32` vector parts concatenated, the action as floats (a discrete part's index,
//! as in the study's code, or a continuous part's values) and the reward as the env gave it.

use std::collections::BTreeMap;

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::bytes::{Reader, Writer};
use metarl_plugin_kit::driver::LastStep;
use metarl_plugin_kit::seeds::SeedStream;

/// Which parts of the env's spaces the encoder reads, and their sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The observation part of the image path (the first `u8` image part) and its `[H, W, C]`.
    pub image: Option<(usize, [i64; 3])>,
    /// The `f32` vector parts of the observation, concatenated.
    pub vectors: Vec<usize>,
    /// Floats of the concatenated vector parts.
    pub vector_dim: usize,
    /// Floats per action (every part's elements, in order).
    pub action_dim: usize,
}

impl Layout {
    /// The layout for an env's spaces; refuses spaces the encoder cannot read.
    pub fn new(obs: &Space, action: &Space) -> Result<Self, String> {
        let image = obs.parts.iter().enumerate().find(|(_, p)| p.role == Role::IMAGE && p.dtype == Dtype::U8 && p.shape.len() == 3);
        let image = image.map(|(i, p)| (i, [p.shape[0] as i64, p.shape[1] as i64, p.shape[2] as i64]));
        let vectors: Vec<usize> =
            obs.parts.iter().enumerate().filter(|(_, p)| p.role == Role::VECTOR && p.dtype == Dtype::F32).map(|(i, _)| i).collect();
        let vector_dim = vectors.iter().map(|&i| obs.parts[i].numel()).sum();
        if image.is_none() && vector_dim == 0 {
            return Err("pearl: the observation has neither a u8 image part (HWC) nor an f32 vector part for the context encoder".into());
        }
        if let Some((_, [h, w, _])) = image {
            if (h - 5) / 5 + 1 < 5 || (w - 5) / 5 + 1 < 5 {
                return Err(format!("pearl: images of {h}x{w} are too small for the encoder's two 5x5 stride-5 convolutions (at least 25x25)"));
            }
        }
        let mut action_dim = 0;
        for p in action.parts.iter() {
            match p.dtype {
                Dtype::I32 | Dtype::F32 => action_dim += p.numel().max(1),
                other => return Err(format!("pearl: action part '{}' has dtype {other:?}, expected i32 or f32", p.name)),
            }
        }
        Ok(Layout { image, vectors, vector_dim, action_dim })
    }

    /// Bytes of one image (0 without the image path).
    pub fn image_len(&self) -> usize {
        self.image.map_or(0, |(_, [h, w, c])| (h * w * c) as usize)
    }

    /// A description for checkpoints and errors.
    pub fn describe(&self) -> String {
        let image = self.image.map_or("none".to_string(), |(_, [h, w, c])| format!("{h}x{w}x{c}"));
        format!("image {image}, vector {}, action {}", self.vector_dim, self.action_dim)
    }
}

/// One task's last `window` transitions, oldest overwritten first.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskContext {
    images: Vec<u8>,
    vectors: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    /// Transitions held (at most the window).
    pub len: usize,
    next: usize,
}

/// Transitions drawn for the encoder: `rows` of them, task after task.
#[derive(Debug, Default)]
pub struct Batch {
    /// `rows * image_len` bytes.
    pub images: Vec<u8>,
    /// `rows * vector_dim` floats.
    pub vectors: Vec<f32>,
    /// `rows * action_dim` floats.
    pub actions: Vec<f32>,
    /// `rows` rewards.
    pub rewards: Vec<f32>,
    /// Transitions in the batch.
    pub rows: usize,
}

/// Every task's context FIFO.
#[derive(Debug, Clone, PartialEq)]
pub struct Contexts {
    /// What a transition holds.
    pub layout: Layout,
    /// Transitions kept per task.
    pub window: usize,
    tasks: BTreeMap<u64, TaskContext>,
}

impl Contexts {
    /// Empty FIFOs of `window` transitions.
    pub fn new(layout: Layout, window: usize) -> Self {
        Contexts { layout, window, tasks: BTreeMap::new() }
    }

    /// Transitions held for `task`.
    pub fn len(&self, task: u64) -> usize {
        self.tasks.get(&task).map_or(0, |t| t.len)
    }

    /// Appends every row of a step to its task's FIFO.
    pub fn push_step(&mut self, last: &LastStep<'_>) -> Result<(), PluginError> {
        let (l, window) = (&self.layout, self.window);
        let (img_len, vdim, adim) = (l.image_len(), l.vector_dim, l.action_dim);
        for (row, &task) in last.task.iter().enumerate() {
            let t = self.tasks.entry(task).or_insert_with(|| TaskContext {
                images: vec![0; window * img_len],
                vectors: vec![0.0; window * vdim],
                actions: vec![0.0; window * adim],
                rewards: vec![0.0; window],
                len: 0,
                next: 0,
            });
            let slot = t.next;
            if let Some((part, _)) = l.image {
                let src = last.obs.get(part).and_then(|a| a.u8()).ok_or_else(|| PluginError::invalid("pearl: image part missing"))?;
                t.images[slot * img_len..(slot + 1) * img_len].copy_from_slice(&src[row * img_len..(row + 1) * img_len]);
            }
            let mut at = slot * vdim;
            for &part in &l.vectors {
                let src = last.obs.get(part).and_then(|a| a.f32()).ok_or_else(|| PluginError::invalid("pearl: vector part missing"))?;
                let k = src.len() / last.task.len();
                t.vectors[at..at + k].copy_from_slice(&src[row * k..(row + 1) * k]);
                at += k;
            }
            let mut at = slot * adim;
            for a in &last.actions {
                let k = a.len() / last.task.len();
                let dst = &mut t.actions[at..at + k];
                if let Some(v) = a.i32() {
                    dst.iter_mut().zip(&v[row * k..(row + 1) * k]).for_each(|(d, &s)| *d = s as f32);
                } else if let Some(v) = a.f32() {
                    dst.copy_from_slice(&v[row * k..(row + 1) * k]);
                }
                at += k;
            }
            t.rewards[slot] = last.rewards[row];
            t.next = (slot + 1) % window;
            t.len = (t.len + 1).min(window);
        }
        Ok(())
    }

    /// Appends `count` transitions drawn uniformly with replacement from each of `tasks`
    /// (each must hold some) to one batch, task after task.
    pub fn draw(&self, tasks: &[u64], count: usize, rng: &mut SeedStream) -> Batch {
        let l = &self.layout;
        let (img_len, vdim, adim) = (l.image_len(), l.vector_dim, l.action_dim);
        let mut b = Batch::default();
        for task in tasks {
            let t = &self.tasks[task];
            for _ in 0..count {
                let i = rng.below(t.len);
                b.images.extend_from_slice(&t.images[i * img_len..(i + 1) * img_len]);
                b.vectors.extend_from_slice(&t.vectors[i * vdim..(i + 1) * vdim]);
                b.actions.extend_from_slice(&t.actions[i * adim..(i + 1) * adim]);
                b.rewards.push(t.rewards[i]);
                b.rows += 1;
            }
        }
        b
    }

    /// Serialises every FIFO.
    pub fn write(&self, w: &mut Writer) {
        w.u32(self.window as u32);
        w.u32(self.tasks.len() as u32);
        for (&task, t) in &self.tasks {
            w.u64(task);
            w.u32(t.len as u32);
            w.u32(t.next as u32);
            w.bytes(&t.images);
            w.f32s(&t.vectors);
            w.f32s(&t.actions);
            w.f32s(&t.rewards);
        }
    }

    /// Reads what [`Contexts::write`] wrote for the same layout.
    pub fn read(layout: Layout, r: &mut Reader<'_>) -> Result<Self, PluginError> {
        let window = r.u32()? as usize;
        let count = r.u32()? as usize;
        let (img_len, vdim, adim) = (layout.image_len(), layout.vector_dim, layout.action_dim);
        let mut tasks = BTreeMap::new();
        for _ in 0..count {
            let task = r.u64()?;
            let (len, next) = (r.u32()? as usize, r.u32()? as usize);
            if window == 0 || len > window || next >= window {
                return Err(r.corrupt());
            }
            let images = r.take(window * img_len)?.to_vec();
            let vectors = r.f32s(window * vdim)?;
            let actions = r.f32s(window * adim)?;
            let rewards = r.f32s(window)?;
            tasks.insert(task, TaskContext { images, vectors, actions, rewards, len, next });
        }
        Ok(Contexts { layout, window, tasks })
    }
}
