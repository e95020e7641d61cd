//! Prioritised replay, one buffer per task, with every frame stored once as `u8`.
//!
//! **Frames.** An observation is `frame_stack` frames along the channel axis, oldest first
//! (HWC with channel `f * c + ch` for frame `f`, as env-ale writes its stack; `c` channels per
//! frame). Each buffer keeps a reference-counted store of frames; a transition holds the ids
//! of its observation's frames and of its bootstrap observation's frames. Within an episode
//! the next observation is the observation shifted by one frame, so a step adds one frame.
//! Where an env's rows do not continue (an episode start, the first row, a task change), the
//! observation is stored by overlapping it with that env's last stored stack in this buffer
//! (after a lost life env-ale keeps the stack, so the new episode's first stack shares frames
//! with the old one) and adding the rest as new frames (at a game start the zero frames
//! collapse into one). Stacks are rebuilt by id and equal the recorded observations
//! bit-for-bit. Within an episode a next observation that is *not* the shifted observation is
//! an error naming `frame_stack`: a wrong setting never corrupts the buffer silently.
//!
//! **n-step.** Rows of one env are linked in the order they were recorded. A row becomes
//! sampleable (gets the buffer's maximum priority, as in Kaixhin's Rainbow) once its n-step
//! window is final: n rows recorded, or an episode end or a break in the env's rows within
//! the window. The window stops after a `terminated` row (no bootstrap) or a `truncated` one
//! (bootstrap from its `final_obs` when stored, else none).
//!
//! **Priorities.** A sum tree of `priority^ω` per slot, rebuilt node by node from its
//! children on every write, so a tree restored from its leaves is bit-identical.

use std::collections::VecDeque;

use metarl_plugin_api::types::PluginError;

use metarl_tch_common::replay::{renumber_live, SumTree};

use crate::checkpoint::{Reader, Writer};

/// An absent frame id.
pub const NONE: u32 = u32::MAX;
const NO_SEQ: u64 = u64::MAX;

const TERMINATED: u8 = 1;
const TRUNCATED: u8 = 2;
/// The row stores a bootstrap observation (`next_ids`).
const HAS_NEXT: u8 = 4;

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("rainbow: {msg}"))
}

/// Reference-counted frames of one size.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    bytes: usize,
    data: Vec<u8>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Frames {
    fn new(bytes: usize) -> Self {
        Frames { bytes, ..Default::default() }
    }
    fn add(&mut self, px: &[u8]) -> u32 {
        match self.free.pop() {
            Some(id) => {
                let at = id as usize * self.bytes;
                self.data[at..at + self.bytes].copy_from_slice(px);
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.data.extend_from_slice(px);
                self.refs.push(1);
                (self.refs.len() - 1) as u32
            }
        }
    }
    fn retain(&mut self, id: u32) {
        self.refs[id as usize] += 1;
    }
    fn release(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r == 0 {
            self.free.push(id);
        }
    }
    fn get(&self, id: u32) -> &[u8] {
        &self.data[id as usize * self.bytes..][..self.bytes]
    }
    /// Frames currently referenced.
    pub fn live(&self) -> usize {
        self.refs.len() - self.free.len()
    }
}

/// One row as `record` hands it over (one env's columns).
pub struct Row<'a> {
    /// Env (lane) index within the batch.
    pub lane: usize,
    /// Task.
    pub task: u64,
    /// Observation acted in, HWC.
    pub obs: &'a [u8],
    /// Action taken.
    pub action: i32,
    /// Reward received.
    pub reward: f32,
    /// Episode reached a terminal state.
    pub terminated: bool,
    /// Episode was cut off.
    pub truncated: bool,
    /// Observation after the step (for auto-reset envs at an episode end: the next episode's).
    pub next_obs: &'a [u8],
    /// True last observation where the episode ended, if the env gives it.
    pub final_obs: Option<&'a [u8]>,
    /// Context row given to `act` (empty without context).
    pub context: &'a [f32],
}

/// A sampled transition with its n-step return.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Slot in the task's buffer (for the priority update).
    pub slot: usize,
    /// Action taken.
    pub action: i32,
    /// `Σ_{k<m} γ^k r_{t+k}`.
    pub ret: f32,
    /// `γ^m` when bootstrapping from the m-th next observation, 0 without bootstrap.
    pub discount: f32,
    /// Importance-sampling weight, normalised by the largest of its task's samples.
    pub weight: f32,
}

/// Geometry of observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Pixels per frame (H * W).
    pub pixels: usize,
    /// Channels per frame.
    pub channels: usize,
    /// Frames per observation.
    pub stack: usize,
}

impl Layout {
    /// Bytes per observation.
    pub fn obs_bytes(&self) -> usize {
        self.pixels * self.channels * self.stack
    }
    fn frame_bytes(&self) -> usize {
        self.pixels * self.channels
    }
    /// Frame `f` of an HWC observation into `out`.
    fn frame_of(&self, obs: &[u8], f: usize, out: &mut [u8]) {
        let (c, k) = (self.channels, self.stack);
        for px in 0..self.pixels {
            out[px * c..(px + 1) * c].copy_from_slice(&obs[(px * k + f) * c..][..c]);
        }
    }
    /// Whether frame `fa` of `a` equals frame `fb` of `b`.
    fn frames_equal(&self, a: &[u8], fa: usize, b: &[u8], fb: usize) -> bool {
        let (c, k) = (self.channels, self.stack);
        (0..self.pixels).all(|px| a[(px * k + fa) * c..][..c] == b[(px * k + fb) * c..][..c])
    }
    /// Whether `next` is `obs` shifted by one frame (its frames 0..k-1 are obs's 1..k).
    pub fn is_shift(&self, obs: &[u8], next: &[u8]) -> bool {
        (0..self.stack - 1).all(|f| self.frames_equal(next, f, obs, f + 1))
    }
}

/// The replay buffer of one task.
#[derive(Debug, Clone)]
pub struct TaskBuffer {
    capacity: usize,
    layout: Layout,
    ctx_dim: usize,
    frames: Frames,
    /// Rows recorded into this buffer so far; row `seq` lives in slot `seq % capacity`.
    next_seq: u64,
    obs: Vec<u32>,
    next: Vec<u32>,
    action: Vec<i32>,
    reward: Vec<f32>,
    flags: Vec<u8>,
    succ: Vec<u64>,
    context: Vec<f32>,
    tree: SumTree,
    max_priority: f64,
}

impl TaskBuffer {
    fn new(capacity: usize, layout: Layout, ctx_dim: usize) -> Self {
        TaskBuffer {
            capacity,
            layout,
            ctx_dim,
            frames: Frames::new(layout.frame_bytes()),
            next_seq: 0,
            obs: Vec::new(),
            next: Vec::new(),
            action: Vec::new(),
            reward: Vec::new(),
            flags: Vec::new(),
            succ: Vec::new(),
            context: Vec::new(),
            tree: SumTree::new(capacity),
            max_priority: 1.0,
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        (self.next_seq as usize).min(self.capacity)
    }
    /// True if no row is held.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }
    /// Frames held.
    pub fn frames_live(&self) -> usize {
        self.frames.live()
    }
    /// Sum of priorities of sampleable rows.
    pub fn total_priority(&self) -> f64 {
        self.tree.total()
    }
    /// Rows whose n-step window is final (sampleable).
    pub fn sampleable(&self) -> usize {
        (0..self.len()).filter(|&s| self.tree.get(s) > 0.0).count()
    }
    /// Priority (`p^ω`) of a slot.
    pub fn priority(&self, slot: usize) -> f64 {
        self.tree.get(slot)
    }

    fn holds(&self, seq: u64) -> bool {
        seq < self.next_seq && seq + self.capacity as u64 >= self.next_seq
    }
    fn slot(&self, seq: u64) -> usize {
        (seq % self.capacity as u64) as usize
    }
    fn ids(v: &[u32], slot: usize, k: usize) -> &[u32] {
        &v[slot * k..(slot + 1) * k]
    }

    /// Whether the stack `ids` rebuilds exactly `obs`.
    fn stack_equals(&self, ids: &[u32], obs: &[u8]) -> bool {
        let l = self.layout;
        let (c, k) = (l.channels, l.stack);
        ids.iter().enumerate().all(|(f, &id)| {
            let frame = self.frames.get(id);
            (0..l.pixels).all(|px| frame[px * c..(px + 1) * c] == obs[(px * k + f) * c..][..c])
        })
    }

    /// Rebuilds the HWC observation of the stack `ids` into `out` (zeros for [`NONE`] ids).
    pub fn write_stack(&self, ids: &[u32], out: &mut [u8]) {
        let l = self.layout;
        let (c, k) = (l.channels, l.stack);
        for (f, &id) in ids.iter().enumerate() {
            if id == NONE {
                for px in 0..l.pixels {
                    out[(px * k + f) * c..][..c].fill(0);
                }
                continue;
            }
            let frame = self.frames.get(id);
            for px in 0..l.pixels {
                out[(px * k + f) * c..][..c].copy_from_slice(&frame[px * c..(px + 1) * c]);
            }
        }
    }

    /// Stores `obs` as a fresh stack: its longest prefix that equals a suffix of `tail` shares
    /// those frames, the rest are new (a new frame equal to the one before it is shared).
    fn store_fresh(&mut self, obs: &[u8], tail: Option<Vec<u32>>) -> Vec<u32> {
        let l = self.layout;
        let k = l.stack;
        let mut frames: Vec<Vec<u8>> = vec![vec![0; l.frame_bytes()]; k];
        for (f, fr) in frames.iter_mut().enumerate() {
            l.frame_of(obs, f, fr);
        }
        let mut overlap = 0;
        if let Some(tail) = &tail {
            for m in (1..k).rev() {
                if (0..m).all(|f| self.frames.get(tail[k - m + f]) == frames[f].as_slice()) {
                    overlap = m;
                    break;
                }
            }
        }
        let mut ids = Vec::with_capacity(k);
        if let Some(tail) = &tail {
            for &id in &tail[k - overlap..] {
                self.frames.retain(id);
                ids.push(id);
            }
        }
        for f in overlap..k {
            if f > overlap && frames[f] == frames[f - 1] {
                let id = ids[f - 1];
                self.frames.retain(id);
                ids.push(id);
            } else {
                ids.push(self.frames.add(&frames[f]));
            }
        }
        ids
    }

    /// `obs`'s ids shifted by one, with the newest frame of `next` added.
    fn store_shifted(&mut self, obs_ids: &[u32], next: &[u8]) -> Vec<u32> {
        let l = self.layout;
        let mut newest = vec![0; l.frame_bytes()];
        l.frame_of(next, l.stack - 1, &mut newest);
        let mut ids: Vec<u32> = obs_ids[1..].to_vec();
        for &id in &ids {
            self.frames.retain(id);
        }
        ids.push(self.frames.add(&newest));
        ids
    }

    /// Appends a row, evicting the oldest when full; returns its sequence number.
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, obs: Vec<u32>, next: Option<Vec<u32>>, action: i32, reward: f32, flags: u8, context: &[f32]) -> u64 {
        let k = self.layout.stack;
        let seq = self.next_seq;
        let slot = self.slot(seq);
        let next = next.unwrap_or_else(|| vec![NONE; k]);
        let ctx: Vec<f32> = if context.is_empty() { vec![0.0; self.ctx_dim] } else { context.to_vec() };
        if seq >= self.capacity as u64 {
            for i in 0..k {
                let (o, n) = (self.obs[slot * k + i], self.next[slot * k + i]);
                self.frames.release(o);
                if n != NONE {
                    self.frames.release(n);
                }
            }
            self.tree.set(slot, 0.0);
            self.obs[slot * k..(slot + 1) * k].copy_from_slice(&obs);
            self.next[slot * k..(slot + 1) * k].copy_from_slice(&next);
            self.action[slot] = action;
            self.reward[slot] = reward;
            self.flags[slot] = flags;
            self.succ[slot] = NO_SEQ;
            self.context[slot * self.ctx_dim..(slot + 1) * self.ctx_dim].copy_from_slice(&ctx);
        } else {
            self.obs.extend_from_slice(&obs);
            self.next.extend_from_slice(&next);
            self.action.push(action);
            self.reward.push(reward);
            self.flags.push(flags);
            self.succ.push(NO_SEQ);
            self.context.extend_from_slice(&ctx);
        }
        self.next_seq += 1;
        seq
    }

    /// Makes row `seq` sampleable with the maximum priority seen so far.
    fn finalize(&mut self, seq: u64) {
        if self.holds(seq) {
            let slot = self.slot(seq);
            self.tree.set(slot, self.max_priority);
        }
    }

    /// Ends of the n-step window starting at `slot`: `(return, discount, bootstrap slot)`.
    pub fn window(&self, slot: usize, n: usize, gamma: f64) -> (f32, f32, Option<usize>) {
        let (mut ret, mut g, mut cur) = (0f64, 1f64, slot);
        for m in 0..n {
            ret += g * self.reward[cur] as f64;
            g *= gamma;
            let flags = self.flags[cur];
            if flags & HAS_NEXT == 0 {
                return (ret as f32, 0.0, None);
            }
            let last = flags & TRUNCATED != 0 || m + 1 == n || self.succ[cur] == NO_SEQ || !self.holds(self.succ[cur]);
            if last {
                return (ret as f32, g as f32, Some(cur));
            }
            cur = self.slot(self.succ[cur]);
        }
        unreachable!("the loop returns at m = n - 1")
    }

    /// Observation ids of a slot.
    pub fn obs_ids(&self, slot: usize) -> &[u32] {
        Self::ids(&self.obs, slot, self.layout.stack)
    }
    /// Bootstrap observation ids of a slot.
    pub fn next_ids(&self, slot: usize) -> &[u32] {
        Self::ids(&self.next, slot, self.layout.stack)
    }
    /// Action of a slot.
    pub fn action(&self, slot: usize) -> i32 {
        self.action[slot]
    }
    /// Context row stored with a slot.
    pub fn context(&self, slot: usize) -> &[f32] {
        &self.context[slot * self.ctx_dim..(slot + 1) * self.ctx_dim]
    }

    /// `count` slots drawn proportionally to priority, one per equal segment of the total
    /// (Kaixhin's stratified sampling), with `u` giving uniforms in [0, 1); their
    /// importance weights `(N P(i))^-β` divided by the largest.
    pub fn sample(&self, count: usize, beta: f64, u: impl FnMut() -> f64) -> Vec<(usize, f32)> {
        self.tree.stratified(count, self.len(), beta, u).into_iter().map(|(s, w)| (s, w as f32)).collect()
    }

    /// Sets a slot's priority to `p^ω` (a tiny floor keeps it sampleable).
    pub fn set_priority(&mut self, slot: usize, loss: f64, omega: f64) {
        let p = loss.max(1e-8).powf(omega);
        self.tree.set(slot, p);
        self.max_priority = self.max_priority.max(p);
    }

    fn write(&self, w: &mut Writer) {
        let k = self.layout.stack;
        w.u64(self.capacity as u64);
        w.u64(self.next_seq);
        w.f64(self.max_priority);
        // Live frames only, renumbered in id order.
        let (remap, live) = renumber_live(&self.frames.refs);
        w.u64(live as u64);
        for (id, &r) in self.frames.refs.iter().enumerate() {
            if r > 0 {
                w.bytes(self.frames.get(id as u32));
            }
        }
        let len = self.len();
        let map = |id: u32| if id == NONE { NONE } else { remap[id as usize] };
        for slot in 0..len {
            for i in 0..k {
                w.u32(map(self.obs[slot * k + i]));
                w.u32(map(self.next[slot * k + i]));
            }
            w.u32(self.action[slot] as u32);
            w.f32(self.reward[slot]);
            w.u8(self.flags[slot]);
            w.u64(self.succ[slot]);
            w.f64(self.tree.get(slot));
            w.f32s(self.context(slot));
        }
    }

    fn read(r: &mut Reader, layout: Layout, ctx_dim: usize) -> Result<Self, PluginError> {
        let k = layout.stack;
        let capacity = r.u64()? as usize;
        if capacity == 0 || capacity > u32::MAX as usize / 2 {
            return Err(r.corrupt());
        }
        let mut b = TaskBuffer::new(capacity, layout, ctx_dim);
        b.next_seq = r.u64()?;
        b.max_priority = r.f64()?;
        let live = r.u64()? as usize;
        let fb = layout.frame_bytes();
        b.frames.data = r.take(live.checked_mul(fb).ok_or_else(|| r.corrupt())?)?.to_vec();
        b.frames.refs = vec![0; live];
        let len = b.len();
        for slot in 0..len {
            for _ in 0..k {
                let (o, n) = (r.u32()?, r.u32()?);
                if o as usize >= live || (n != NONE && n as usize >= live) {
                    return Err(r.corrupt());
                }
                b.frames.refs[o as usize] += 1;
                if n != NONE {
                    b.frames.refs[n as usize] += 1;
                }
                b.obs.push(o);
                b.next.push(n);
            }
            b.action.push(r.u32()? as i32);
            b.reward.push(r.f32()?);
            b.flags.push(r.u8()?);
            b.succ.push(r.u64()?);
            let p = r.f64()?;
            if p > 0.0 {
                b.tree.set(slot, p);
            }
            b.context.extend(r.f32s(ctx_dim)?);
        }
        Ok(b)
    }
}

/// Per env: the buffer its current episode goes to, its last row and the rows whose n-step
/// window is still open.
#[derive(Debug, Clone, Default, PartialEq)]
struct Lane {
    task: Option<u64>,
    last: Option<u64>,
    open: VecDeque<u64>,
}

/// All task buffers and the per-env bookkeeping.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Observation geometry.
    pub layout: Layout,
    ctx_dim: usize,
    n: usize,
    /// Capacity of buffers created from now on.
    pub capacity: usize,
    bootstrap_truncated: bool,
    /// Buffers by task, in creation order.
    pub buffers: Vec<(u64, TaskBuffer)>,
    lanes: Vec<Lane>,
}

impl Replay {
    /// Empty replay for `lanes` envs.
    pub fn new(layout: Layout, ctx_dim: usize, n: usize, capacity: usize, bootstrap_truncated: bool, lanes: usize) -> Self {
        Replay { layout, ctx_dim, n, capacity, bootstrap_truncated, buffers: Vec::new(), lanes: vec![Lane::default(); lanes] }
    }

    /// Drops every buffer.
    pub fn clear(&mut self) {
        self.buffers.clear();
        self.lanes.iter_mut().for_each(|l| *l = Lane::default());
    }

    /// The buffer of `task`.
    pub fn buffer(&self, task: u64) -> Option<&TaskBuffer> {
        self.buffers.iter().find(|(t, _)| *t == task).map(|(_, b)| b)
    }

    /// The buffer of `task`, mutably.
    pub fn buffer_mut(&mut self, task: u64) -> Option<&mut TaskBuffer> {
        self.buffers.iter_mut().find(|(t, _)| *t == task).map(|(_, b)| b)
    }

    fn index_or_create(&mut self, task: u64) -> usize {
        match self.buffers.iter().position(|(t, _)| *t == task) {
            Some(i) => i,
            None => {
                self.buffers.push((task, TaskBuffer::new(self.capacity, self.layout, self.ctx_dim)));
                self.buffers.len() - 1
            }
        }
    }

    /// Closes every open window of `lane` (a break in its rows).
    fn close_lane(&mut self, lane: usize) {
        let l = std::mem::take(&mut self.lanes[lane].open);
        if let Some(task) = self.lanes[lane].task {
            if let Some(b) = self.buffer_mut(task) {
                for seq in l {
                    b.finalize(seq);
                }
            }
        }
    }

    /// Stores one env's row.
    pub fn record(&mut self, row: Row<'_>) -> Result<(), PluginError> {
        let layout = self.layout;
        let k = layout.stack;
        let lane = row.lane;
        let bi = self.index_or_create(row.task);
        // Does this row continue the env's last row (same buffer, obs = its next observation)?
        let prev = match (self.lanes[lane].task, self.lanes[lane].last) {
            (Some(t), Some(seq)) if t == row.task && self.buffers[bi].1.holds(seq) => Some(seq),
            _ => None,
        };
        let buf = &self.buffers[bi].1;
        let continues = prev.filter(|&seq| {
            let slot = buf.slot(seq);
            buf.flags[slot] & (TERMINATED | TRUNCATED) == 0 && buf.stack_equals(TaskBuffer::ids(&buf.next, slot, k), row.obs)
        });
        if continues.is_none() {
            self.close_lane(lane);
        }
        let buf = &mut self.buffers[bi].1;
        let obs_ids = match continues {
            Some(seq) => {
                let ids = TaskBuffer::ids(&buf.next, buf.slot(seq), k).to_vec();
                ids.iter().for_each(|&id| buf.frames.retain(id));
                ids
            }
            None => {
                let tail = prev.map(|seq| {
                    let slot = buf.slot(seq);
                    let next = TaskBuffer::ids(&buf.next, slot, k);
                    if next[0] != NONE { next.to_vec() } else { TaskBuffer::ids(&buf.obs, slot, k).to_vec() }
                });
                buf.store_fresh(row.obs, tail)
            }
        };
        let shift_error = |what: &str| {
            invalid(format!(
                "record: env {lane}'s {what} is not its obs shifted by one frame, so its observations are not stacks of \
                 frame_stack = {k} frames; set frame_stack = 1 in the rainbow config if they are not frame stacks"
            ))
        };
        let mut flags = (row.terminated as u8 * TERMINATED) | (row.truncated as u8 * TRUNCATED);
        let next_ids = if !row.terminated && !row.truncated {
            if k > 1 && !layout.is_shift(row.obs, row.next_obs) {
                obs_ids.iter().for_each(|&id| buf.frames.release(id));
                return Err(shift_error("next_obs"));
            }
            flags |= HAS_NEXT;
            Some(buf.store_shifted(&obs_ids, row.next_obs))
        } else if let (false, true, true, Some(fin)) = (row.terminated, row.truncated, self.bootstrap_truncated, row.final_obs) {
            if k > 1 && !layout.is_shift(row.obs, fin) {
                obs_ids.iter().for_each(|&id| buf.frames.release(id));
                return Err(shift_error("final_obs"));
            }
            flags |= HAS_NEXT;
            Some(buf.store_shifted(&obs_ids, fin))
        } else {
            None
        };
        let seq = buf.push(obs_ids, next_ids, row.action, row.reward, flags, row.context);
        if let Some(p) = continues {
            let slot = buf.slot(p);
            buf.succ[slot] = seq;
        }
        let n = self.n;
        let l = &mut self.lanes[lane];
        l.task = Some(row.task);
        l.last = Some(seq);
        // Rows evicted while their window was open (a buffer smaller than the window) drop out.
        l.open.retain(|&s| buf.holds(s));
        l.open.push_back(seq);
        if row.terminated || row.truncated {
            for s in std::mem::take(&mut l.open) {
                buf.finalize(s);
            }
        } else if l.open.len() >= n {
            if let Some(s) = l.open.pop_front() {
                buf.finalize(s);
            }
        }
        Ok(())
    }

    /// Serialises buffers and lanes.
    pub fn write(&self, w: &mut Writer) {
        w.u64(self.capacity as u64);
        w.u32(self.buffers.len() as u32);
        for (task, b) in &self.buffers {
            w.u64(*task);
            b.write(w);
        }
        w.u32(self.lanes.len() as u32);
        for l in &self.lanes {
            w.u64(l.task.unwrap_or(NO_SEQ));
            w.u64(l.last.unwrap_or(NO_SEQ));
            w.u32(l.open.len() as u32);
            for &s in &l.open {
                w.u64(s);
            }
        }
    }

    /// Restores what [`Replay::write`] wrote (same geometry and env count).
    pub fn read(&mut self, r: &mut Reader) -> Result<(), PluginError> {
        self.clear();
        self.capacity = r.u64()? as usize;
        if self.capacity == 0 || self.capacity > u32::MAX as usize / 2 {
            return Err(r.corrupt());
        }
        let count = r.u32()?;
        for _ in 0..count {
            let task = r.u64()?;
            let b = TaskBuffer::read(r, self.layout, self.ctx_dim)?;
            self.buffers.push((task, b));
        }
        let lanes = r.u32()? as usize;
        if lanes != self.lanes.len() {
            return Err(invalid(format!("load: checkpoint replay has {lanes} envs, this agent {}", self.lanes.len())));
        }
        for l in &mut self.lanes {
            let task = r.u64()?;
            let last = r.u64()?;
            l.task = (task != NO_SEQ).then_some(task);
            l.last = (last != NO_SEQ).then_some(last);
            let open = r.u32()? as usize;
            l.open = (0..open).map(|_| r.u64()).collect::<Result<_, _>>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x1-pixel grey frames, stack of 3.
    const L: Layout = Layout { pixels: 2, channels: 1, stack: 3 };

    /// The stack of frames `fs` (oldest first), each frame `[v, v + 100]`.
    fn stack(fs: [u8; 3]) -> Vec<u8> {
        let mut out = vec![0; 6];
        for (f, &v) in fs.iter().enumerate() {
            out[f] = v;
            out[3 + f] = if v == 0 { 0 } else { v + 100 };
        }
        out
    }

    fn row<'a>(obs: &'a [u8], next: &'a [u8], reward: f32, term: bool, trunc: bool, fin: Option<&'a [u8]>) -> Row<'a> {
        Row { lane: 0, task: 0, obs, action: 1, reward, terminated: term, truncated: trunc, next_obs: next, final_obs: fin, context: &[] }
    }

    #[test]
    fn importance_weights_follow_beta_and_priority_updates() {
        let mut b = TaskBuffer::new(4, Layout { pixels: 1, channels: 1, stack: 1 }, 0);
        for _ in 0..4 {
            b.push(vec![0], None, 0, 0.0, TERMINATED, &[]);
        }
        // Priorities p^ω with ω = 0.5: losses 1, 4, 9, 0 -> 1, 2, 3, 0 (slot 3 never sampled).
        for (slot, loss) in [(0, 1.0), (1, 4.0), (2, 9.0)] {
            b.set_priority(slot, loss, 0.5);
        }
        b.tree.set(3, 0.0);
        assert_eq!(b.total_priority(), 6.0);
        assert_eq!(b.max_priority, 3.0);
        // Three segments of width 2; u = 0.25 picks 0.5, 2.5, 4.5 -> slots 0, 1, 2.
        let s = b.sample(3, 0.5, || 0.25);
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        // w_i = (N P(i))^-β with N = 4, P = 1/6, 2/6, 3/6; normalised by the largest (slot 0).
        let w = |p: f64| (4.0 * p).powf(-0.5);
        for (i, p) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0].into_iter().enumerate() {
            assert!((s[i].1 as f64 - w(p) / w(1.0 / 6.0)).abs() < 1e-6, "{:?}", s);
        }
        // β = 1: weights ∝ 1/p exactly.
        let s = b.sample(3, 1.0, || 0.25);
        assert!((s[2].1 - 1.0 / 3.0).abs() < 1e-6 && (s[1].1 - 0.5).abs() < 1e-6);
        // Proportional: with many uniform draws slot 2 comes up half the time.
        let mut x = 0u64;
        let mut u = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let draws = b.sample(6000, 0.4, &mut u);
        let frac = draws.iter().filter(|d| d.0 == 2).count() as f64 / 6000.0;
        assert!((frac - 0.5).abs() < 0.01, "slot 2 drawn {frac}");
    }

    #[test]
    fn n_step_returns_stop_at_terminals_and_bootstrap_from_final_obs() {
        let mut r = Replay::new(L, 0, 3, 64, true, 1);
        let s = |a, b, c| stack([a, b, c]);
        // Episode 1: rewards 1, 2, 4, terminal at the 4th step (reward 8).
        let obs = [s(0, 0, 1), s(0, 1, 2), s(1, 2, 3), s(2, 3, 4)];
        let next = [s(0, 1, 2), s(1, 2, 3), s(2, 3, 4), s(0, 0, 9)];
        for i in 0..4 {
            r.record(row(&obs[i], &next[i], [1.0, 2.0, 4.0, 8.0][i], i == 3, false, None)).unwrap();
        }
        // Episode 2 (starts at s(0,0,9)): reward 1, then truncated with final_obs after reward 2.
        let (o5, n5) = (s(0, 0, 9), s(0, 9, 10));
        let (o6, fin6, n6) = (s(0, 9, 10), s(9, 10, 11), s(0, 0, 20));
        r.record(row(&o5, &n5, 1.0, false, false, None)).unwrap();
        r.record(row(&o6, &n6, 2.0, false, true, Some(&fin6))).unwrap();
        let b = r.buffer(0).unwrap();
        let g: f64 = 0.5;
        // Slot 0: full window of 3 (1 + 0.5*2 + 0.25*4 = 3), bootstrap γ³ from s(2,3,4).
        let (ret, d, boot) = b.window(0, 3, g);
        assert_eq!((ret, d), (3.0, 0.125));
        let mut out = vec![0; 6];
        b.write_stack(b.next_ids(boot.unwrap()), &mut out);
        assert_eq!(out, s(2, 3, 4));
        // Slot 1: 2 + 0.5*4 + 0.25*8 = 6, terminal inside the window: no bootstrap.
        assert_eq!(b.window(1, 3, g), (6.0, 0.0, None));
        assert_eq!(b.window(3, 3, g), (8.0, 0.0, None));
        // Slot 4: 1 + 0.5*2, truncated at the 2nd row: bootstrap γ² from the final obs.
        let (ret, d, boot) = b.window(4, 3, g);
        assert_eq!((ret, d), (2.0, 0.25));
        b.write_stack(b.next_ids(boot.unwrap()), &mut out);
        assert_eq!(out, fin6);
        // Every window is final: the episodes ended.
        assert_eq!(b.sampleable(), 6);
        // Without final_obs, a truncation is a terminal.
        let mut r2 = Replay::new(L, 0, 3, 64, true, 1);
        r2.record(row(&o6, &n6, 2.0, false, true, None)).unwrap();
        assert_eq!(r2.buffer(0).unwrap().window(0, 3, g), (2.0, 0.0, None));
    }

    #[test]
    fn open_windows_are_not_sampleable() {
        let mut r = Replay::new(L, 0, 3, 64, true, 1);
        let s = |a, b, c| stack([a, b, c]);
        r.record(row(&s(0, 0, 1), &s(0, 1, 2), 0.0, false, false, None)).unwrap();
        r.record(row(&s(0, 1, 2), &s(1, 2, 3), 0.0, false, false, None)).unwrap();
        assert_eq!(r.buffer(0).unwrap().sampleable(), 0);
        r.record(row(&s(1, 2, 3), &s(2, 3, 4), 0.0, false, false, None)).unwrap();
        assert_eq!(r.buffer(0).unwrap().sampleable(), 1);
        // A break (the next obs does not continue) closes the open windows.
        r.record(row(&s(7, 7, 7), &s(7, 7, 8), 0.0, false, false, None)).unwrap();
        let b = r.buffer(0).unwrap();
        assert_eq!(b.sampleable(), 3);
        assert_eq!(b.window(2, 3, 0.5), (0.0, 0.5, Some(2)));
    }

    #[test]
    fn a_wrong_frame_stack_is_an_error() {
        let mut r = Replay::new(L, 0, 3, 64, true, 1);
        let e = r.record(row(&stack([1, 2, 3]), &stack([5, 6, 7]), 0.0, false, false, None)).unwrap_err();
        assert!(e.message.contains("frame_stack = 3"), "{}", e.message);
    }

    /// A fake Atari env: per lane a stack of 4 frames of 3x3 grey pixels, oldest first. A game
    /// starts zero-filled with one frame (as env-ale's `new_game`); a lost life is terminal
    /// and the next episode keeps the stack, shifted by the true last frame and a no-op frame
    /// (env-ale's `after_life_loss`); a game over switches task; every 9th episode ends by
    /// truncation with `final_obs`.
    #[test]
    fn stacks_rebuilt_from_stored_frames_equal_the_recorded_observations() {
        const K: usize = 4;
        let layout = Layout { pixels: 9, channels: 1, stack: K };
        let mut replay = Replay::new(layout, 0, 5, 100_000, true, 2);
        let mut x = 12345u64;
        let mut frame = || -> Vec<u8> {
            (0..9)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (x >> 56) as u8 | 1
                })
                .collect()
        };
        let to_obs = |frames: &[Vec<u8>]| -> Vec<u8> {
            let mut o = vec![0; 9 * K];
            for (f, fr) in frames.iter().enumerate() {
                for px in 0..9 {
                    o[px * K + f] = fr[px];
                }
            }
            o
        };
        let zero_start = |f: Vec<u8>| vec![vec![0u8; 9], vec![0u8; 9], vec![0u8; 9], f];
        let shift = |st: &[Vec<u8>], f: Vec<u8>| {
            let mut s = st[1..].to_vec();
            s.push(f);
            s
        };
        let mut stacks = [zero_start(frame()), zero_start(frame())];
        let mut tasks = [0u64, 1];
        let mut episode = [0u32; 2];
        let mut steps = [0u32; 2];
        // (task, seq in its buffer, obs, bootstrap obs if stored)
        type Logged = (u64, u64, Vec<u8>, Option<Vec<u8>>);
        let mut log: Vec<Logged> = Vec::new();
        let mut seqs = std::collections::BTreeMap::<u64, u64>::new();
        for t in 0..3000u32 {
            for lane in 0..2 {
                let obs = to_obs(&stacks[lane]);
                steps[lane] += 1;
                let end = (t * 7 + lane as u32 * 3).is_multiple_of(23) && steps[lane] > 2;
                let life_lost = end && episode[lane] % 3 != 2;
                let truncated = end && !life_lost && episode[lane] % 9 == 8;
                let game_over = end && !life_lost;
                let last = shift(&stacks[lane], frame());
                let (next, fin) = if !end {
                    (last.clone(), None)
                } else if life_lost {
                    (shift(&last, frame()), Some(last.clone()))
                } else {
                    (zero_start(frame()), Some(last.clone()))
                };
                let (next_obs, fin_obs) = (to_obs(&next), fin.as_ref().map(|f| to_obs(f)));
                replay
                    .record(Row {
                        lane,
                        task: tasks[lane],
                        obs: &obs,
                        action: 0,
                        reward: 0.0,
                        terminated: end && !truncated,
                        truncated,
                        next_obs: &next_obs,
                        final_obs: fin_obs.as_deref(),
                        context: &[],
                    })
                    .unwrap();
                let seq = seqs.entry(tasks[lane]).or_insert(0);
                let boot = if !end { Some(next_obs.clone()) } else if truncated { fin_obs.clone() } else { None };
                log.push((tasks[lane], *seq, obs, boot));
                *seq += 1;
                if end {
                    episode[lane] += 1;
                    steps[lane] = 0;
                    if game_over {
                        tasks[lane] = (tasks[lane] + 1 + lane as u64) % 3;
                    }
                }
                stacks[lane] = next;
            }
        }
        let mut out = vec![0; 9 * K];
        let mut starts = 0;
        for (task, seq, obs, boot) in &log {
            let b = replay.buffer(*task).unwrap();
            let slot = b.slot(*seq);
            b.write_stack(b.obs_ids(slot), &mut out);
            assert_eq!(&out, obs, "task {task} row {seq}");
            match boot {
                Some(next) => {
                    b.write_stack(b.next_ids(slot), &mut out);
                    assert_eq!(&out, next, "task {task} row {seq}: bootstrap observation");
                }
                None => {
                    assert_eq!(b.next_ids(slot)[0], NONE);
                    starts += 1;
                }
            }
        }
        assert!(starts > 100, "the run had {starts} terminal rows");
        // Each frame once: one per row, plus a few per episode start.
        let rows = log.len();
        let frames: usize = replay.buffers.iter().map(|(_, b)| b.frames_live()).sum();
        assert!(frames < rows + 4 * starts, "{frames} frames for {rows} rows");
        assert!(frames >= rows, "{frames} frames for {rows} rows");
    }

    #[test]
    fn eviction_releases_frames() {
        let layout = Layout { pixels: 1, channels: 1, stack: 2 };
        let mut r = Replay::new(layout, 0, 2, 4, true, 1);
        for i in 0..100u8 {
            r.record(row(&[i, i + 1], &[i + 1, i + 2], 0.0, false, false, None)).unwrap();
        }
        let b = r.buffer(0).unwrap();
        assert_eq!(b.len(), 4);
        // 4 rows of a contiguous stream: frames 96..=101.
        assert_eq!(b.frames_live(), 6);
        let mut out = vec![0; 2];
        b.write_stack(b.obs_ids(b.slot(99)), &mut out);
        assert_eq!(out, [99, 100]);
    }
}
