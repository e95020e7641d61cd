//! Prioritised replay, one buffer per task, holding what the update voxelises.
//!
//! **What is stored.** Each observation is kept as its [`Cloud`]: the points any level's box
//! can hold, their colours and the proprioception. Storing level 0's grid instead would not
//! do: a finer level's grid is a crop around a chosen voxel, voxelised from the raw points,
//! and at the next state that voxel is only known at update time (the online net's choice).
//! The clouds are also smaller than a grid once cropped to the scene (a 64×64 camera gives
//! at most 4096 points of 15 bytes; a 16³ grid of 10 floats is 160 KB). A row holds the ids of
//! its observation and of its bootstrap observation in a reference-counted store, and an
//! observation that equals the same env's previous bootstrap observation (the next keyframe
//! of one episode) is stored once.
//!
//! **A row** is (s, agent action, r, s' or none), with the context row the agent acted with
//! and the crop-augmentation shifts of its finer boxes (demonstrations): s' is absent where
//! the episode reached a terminal state, or ended without a true last observation to
//! bootstrap from.
//!
//! **Priorities.** New rows get the largest priority seen so far; the update sets ARM's
//! priority of each sampled row (already raised to α by [`crate::learn::priorities`]). A sum
//! tree per buffer samples proportionally, stratified over `count` equal segments; the
//! importance weights `(N P(i))^-β` are divided by the largest of the task's samples.

use std::collections::BTreeMap;

use metarl_plugin_api::types::PluginError;
use metarl_plugin_kit::bytes::{Reader, Writer};
use metarl_tch_common::replay::{renumber_live, SumTree};

use crate::spaces::{AgentAction, Cloud};

/// An absent observation id.
pub const NONE: u32 = u32::MAX;

/// Reference-counted observations.
#[derive(Debug, Clone, Default)]
struct Store {
    clouds: Vec<Cloud>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Store {
    fn add(&mut self, c: Cloud) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.clouds[id as usize] = c;
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.clouds.push(c);
                self.refs.push(1);
                (self.clouds.len() - 1) as u32
            }
        }
    }
    fn retain(&mut self, id: u32) {
        self.refs[id as usize] += 1;
    }
    fn release(&mut self, id: u32) {
        if id == NONE {
            return;
        }
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r == 0 {
            self.clouds[id as usize] = Cloud::default();
            self.free.push(id);
        }
    }
    fn live(&self, id: u32) -> Option<&Cloud> {
        (id != NONE && self.refs.get(id as usize).is_some_and(|&r| r > 0)).then(|| &self.clouds[id as usize])
    }
}

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    obs: u32,
    next: u32,
    action: AgentAction,
    reward: f32,
    context: Vec<f32>,
    shifts: Vec<[f32; 3]>,
}

/// A row as the agent records it.
pub struct Row {
    /// Env (lane) index within the batch.
    pub lane: usize,
    /// Task.
    pub task: u64,
    /// Observation acted in.
    pub obs: Cloud,
    /// The agent's action.
    pub action: AgentAction,
    /// Reward received.
    pub reward: f32,
    /// Observation to bootstrap from; `None` for none.
    pub next: Option<Cloud>,
    /// The context row the agent acted with (empty without context).
    pub context: Vec<f32>,
    /// Crop-augmentation shifts of the finer levels' boxes (empty: none).
    pub shifts: Vec<[f32; 3]>,
}

/// A sampled row, as the update reads it.
pub struct Sample<'a> {
    /// Slot (for the priority update).
    pub slot: usize,
    /// Observation.
    pub obs: &'a Cloud,
    /// Bootstrap observation.
    pub next: Option<&'a Cloud>,
    /// Action.
    pub action: &'a AgentAction,
    /// Reward.
    pub reward: f32,
    /// Context row stored with it.
    pub context: &'a [f32],
    /// Its crop-augmentation shifts.
    pub shifts: &'a [[f32; 3]],
    /// Normalised importance weight.
    pub weight: f32,
}

/// The replay buffer of one task.
#[derive(Debug, Clone)]
pub struct TaskBuffer {
    capacity: usize,
    store: Store,
    slots: Vec<Slot>,
    next_seq: u64,
    tree: SumTree,
    max_priority: f64,
}

impl TaskBuffer {
    fn new(capacity: usize) -> Self {
        TaskBuffer { capacity, store: Store::default(), slots: Vec::new(), next_seq: 0, tree: SumTree::new(capacity), max_priority: 1.0 }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// True if no row is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// Observations held (shared ones once).
    pub fn observations(&self) -> usize {
        self.store.refs.iter().filter(|&&r| r > 0).count()
    }
    /// A slot's priority.
    pub fn priority(&self, slot: usize) -> f64 {
        self.tree.get(slot)
    }

    fn push(&mut self, row: Slot) {
        let slot = (self.next_seq % self.capacity as u64) as usize;
        if slot < self.slots.len() {
            let old = std::mem::replace(&mut self.slots[slot], row);
            self.store.release(old.obs);
            self.store.release(old.next);
        } else {
            self.slots.push(row);
        }
        self.tree.set(slot, self.max_priority);
        self.next_seq += 1;
    }

    /// `count` slots drawn proportionally to priority, one per equal segment of the total,
    /// with `u` giving uniforms in [0, 1), and their weights `(N P(i))^-β / max`.
    pub fn sample(&self, count: usize, beta: f64, u: impl FnMut() -> f64) -> Vec<Sample<'_>> {
        self.tree
            .stratified(count, self.len(), beta, u)
            .into_iter()
            .map(|(slot, w)| {
                let s = &self.slots[slot];
                Sample {
                    slot,
                    obs: &self.store.clouds[s.obs as usize],
                    next: self.store.live(s.next),
                    action: &s.action,
                    reward: s.reward,
                    context: &s.context,
                    shifts: &s.shifts,
                    weight: w as f32,
                }
            })
            .collect()
    }

    /// Sets a slot's priority (a tiny floor keeps it sampleable).
    pub fn set_priority(&mut self, slot: usize, p: f64) {
        let p = if p.is_finite() { p.max(1e-8) } else { self.max_priority };
        self.tree.set(slot, p);
        self.max_priority = self.max_priority.max(p);
    }

    fn write_cloud(w: &mut Writer, c: &Cloud) {
        w.u64(c.len() as u64);
        w.f32s(&c.points);
        w.bytes(&c.rgb);
        w.u32(c.proprio.len() as u32);
        w.f32s(&c.proprio);
    }

    fn read_cloud(r: &mut Reader) -> Result<Cloud, PluginError> {
        let n = r.u64()? as usize;
        let points = r.f32s(n.checked_mul(3).ok_or_else(|| r.corrupt())?)?;
        let rgb = r.take(3 * n)?.to_vec();
        let p = r.u32()? as usize;
        Ok(Cloud { points, rgb, proprio: r.f32s(p)? })
    }

    fn write(&self, w: &mut Writer) {
        w.u64(self.capacity as u64);
        w.u64(self.next_seq);
        w.f64(self.max_priority);
        // Live observations only, renumbered in id order.
        let (remap, live) = renumber_live(&self.store.refs);
        w.u64(live as u64);
        for (id, &r) in self.store.refs.iter().enumerate() {
            if r > 0 {
                Self::write_cloud(w, &self.store.clouds[id]);
            }
        }
        let map = |id: u32| if id == NONE { NONE } else { remap[id as usize] };
        w.u64(self.slots.len() as u64);
        for (i, s) in self.slots.iter().enumerate() {
            w.u32(map(s.obs));
            w.u32(map(s.next));
            w.u32(s.action.voxels.len() as u32);
            for v in s.action.voxels.iter().flatten().chain(&s.action.rot_grip) {
                w.u32(*v as u32);
            }
            w.f32(s.reward);
            w.u32(s.context.len() as u32);
            w.f32s(&s.context);
            w.u32(s.shifts.len() as u32);
            w.f32s(s.shifts.as_flattened());
            w.f64(self.tree.get(i));
        }
    }

    fn read(r: &mut Reader, capacity: usize) -> Result<Self, PluginError> {
        let cap = r.u64()? as usize;
        if cap != capacity {
            return Err(PluginError::invalid(format!("c2farm load: the checkpoint's buffers hold {cap} rows, this agent's {capacity}")));
        }
        let mut b = TaskBuffer::new(capacity);
        b.next_seq = r.u64()?;
        b.max_priority = r.f64()?;
        let live = r.u64()? as usize;
        for _ in 0..live {
            let c = Self::read_cloud(r)?;
            b.store.clouds.push(c);
            b.store.refs.push(0);
        }
        let rows = r.u64()? as usize;
        if rows > capacity {
            return Err(r.corrupt());
        }
        for i in 0..rows {
            let (obs, next) = (r.u32()?, r.u32()?);
            if obs as usize >= live || (next != NONE && next as usize >= live) {
                return Err(r.corrupt());
            }
            b.store.refs[obs as usize] += 1;
            if next != NONE {
                b.store.refs[next as usize] += 1;
            }
            let levels = r.u32()? as usize;
            if levels > 16 {
                return Err(r.corrupt());
            }
            let mut vals = Vec::with_capacity(3 * levels + 4);
            for _ in 0..3 * levels + 4 {
                vals.push(r.u32()? as i64);
            }
            let voxels = vals[..3 * levels].chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            let g = &vals[3 * levels..];
            let action = AgentAction { voxels, rot_grip: [g[0], g[1], g[2], g[3]] };
            let reward = r.f32()?;
            let width = r.u32()? as usize;
            let context = r.f32s(width)?;
            let count = r.u32()? as usize;
            if count > 16 {
                return Err(r.corrupt());
            }
            let shifts = r.f32s(3 * count)?.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            b.slots.push(Slot { obs, next, action, reward, context, shifts });
            let p = r.f64()?;
            if p > 0.0 {
                b.tree.set(i, p);
            }
        }
        if b.store.refs.contains(&0) {
            return Err(r.corrupt());
        }
        Ok(b)
    }
}

/// Per env: the task of its last row and the id of that row's bootstrap observation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Lane {
    last: Option<(u64, u32)>,
}

/// All tasks' buffers.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Rows each task's buffer holds.
    pub capacity: usize,
    buffers: BTreeMap<u64, TaskBuffer>,
    lanes: Vec<Lane>,
}

impl Replay {
    /// Empty buffers of `capacity` rows for `lanes` envs.
    pub fn new(capacity: usize, lanes: usize) -> Self {
        Replay { capacity, buffers: BTreeMap::new(), lanes: vec![Lane::default(); lanes] }
    }

    /// The buffer of `task`, if anything was recorded for it.
    pub fn buffer(&self, task: u64) -> Option<&TaskBuffer> {
        self.buffers.get(&task)
    }
    /// The same, mutably.
    pub fn buffer_mut(&mut self, task: u64) -> Option<&mut TaskBuffer> {
        self.buffers.get_mut(&task)
    }
    /// Rows held over all tasks.
    pub fn len(&self) -> usize {
        self.buffers.values().map(TaskBuffer::len).sum()
    }
    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a row to its task's buffer.
    pub fn record(&mut self, row: Row) {
        let cap = self.capacity;
        let b = self.buffers.entry(row.task).or_insert_with(|| TaskBuffer::new(cap));
        let lane = &mut self.lanes[row.lane];
        // The previous row's bootstrap observation, if this row starts from it.
        let shared = lane.last.filter(|&(t, id)| t == row.task && b.store.live(id) == Some(&row.obs)).map(|(_, id)| id);
        let obs = match shared {
            Some(id) => {
                b.store.retain(id);
                id
            }
            None => b.store.add(row.obs),
        };
        let next = row.next.map_or(NONE, |c| b.store.add(c));
        lane.last = (next != NONE).then_some((row.task, next));
        b.push(Slot { obs, next, action: row.action, reward: row.reward, context: row.context, shifts: row.shifts });
    }

    /// Drops every row.
    pub fn clear(&mut self) {
        self.buffers.clear();
        self.lanes.iter_mut().for_each(|l| *l = Lane::default());
    }

    /// Appends the buffers to a checkpoint.
    pub fn write(&self, w: &mut Writer) {
        w.u64(self.buffers.len() as u64);
        for (task, b) in &self.buffers {
            w.u64(*task);
            b.write(w);
        }
        w.u64(self.lanes.len() as u64);
        for l in &self.lanes {
            match l.last.filter(|&(t, id)| self.buffers.get(&t).is_some_and(|b| b.store.live(id).is_some())) {
                Some((t, id)) => {
                    w.u8(1);
                    w.u64(t);
                    // The id in the renumbered store of its task.
                    let b = &self.buffers[&t];
                    w.u32(b.store.refs[..id as usize].iter().filter(|&&r| r > 0).count() as u32);
                }
                None => w.u8(0),
            }
        }
    }

    /// Reads what [`Replay::write`] wrote.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), PluginError> {
        let tasks = r.u64()? as usize;
        let mut buffers = BTreeMap::new();
        for _ in 0..tasks {
            let task = r.u64()?;
            buffers.insert(task, TaskBuffer::read(r, self.capacity)?);
        }
        let lanes = r.u64()? as usize;
        if lanes != self.lanes.len() {
            return Err(PluginError::invalid(format!("c2farm load: the checkpoint has {lanes} envs, this agent {}", self.lanes.len())));
        }
        let mut out = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            out.push(match r.u8()? {
                0 => Lane::default(),
                _ => {
                    let (t, id) = (r.u64()?, r.u32()?);
                    if buffers.get(&t).is_none_or(|b: &TaskBuffer| b.store.live(id).is_none()) {
                        return Err(r.corrupt());
                    }
                    Lane { last: Some((t, id)) }
                }
            });
        }
        self.buffers = buffers;
        self.lanes = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metarl_plugin_kit::seeds::SeedStream;

    fn cloud(v: f32) -> Cloud {
        Cloud { points: vec![v, v, v], rgb: vec![1, 2, 3], proprio: vec![v] }
    }

    fn row(lane: usize, task: u64, obs: f32, next: Option<f32>) -> Row {
        Row { lane, task, obs: cloud(obs), action: AgentAction { voxels: vec![[obs as i64, 0, 1]], rot_grip: [36, 36, 36, 1] }, reward: obs, next: next.map(cloud), context: vec![obs, -obs], shifts: vec![[obs, 0.0, -obs]] }
    }

    #[test]
    fn an_episode_stores_each_observation_once_and_evicts_the_oldest() {
        let mut r = Replay::new(3, 2);
        // Lane 0: 1 -> 2 -> 3 (terminal); lane 1 interleaved on another task.
        r.record(row(0, 7, 1.0, Some(2.0)));
        r.record(row(1, 9, 5.0, Some(6.0)));
        r.record(row(0, 7, 2.0, Some(3.0)));
        r.record(row(0, 7, 3.0, None));
        let b = r.buffer(7).unwrap();
        assert_eq!((b.len(), b.observations()), (3, 3), "1, 2, 3 once each");
        // A fourth row evicts the first: observation 1 goes, 2 stays (row 2 uses it).
        r.record(row(0, 7, 8.0, Some(9.0)));
        let b = r.buffer(7).unwrap();
        assert_eq!((b.len(), b.observations()), (3, 4));
        let rewards: Vec<f32> = b.sample(3, 0.5, || 0.5).iter().map(|s| s.reward).collect();
        assert!(!rewards.contains(&1.0), "{rewards:?}");
        assert_eq!(r.buffer(9).unwrap().len(), 1);
        // An observation that is not the lane's last bootstrap observation is stored afresh.
        r.record(row(1, 9, 7.0, None));
        assert_eq!(r.buffer(9).unwrap().observations(), 3);
    }

    #[test]
    fn sampling_follows_priorities_and_weights_undo_them() {
        let mut r = Replay::new(8, 1);
        for k in 0..4 {
            r.record(row(0, 0, k as f32, Some(k as f32 + 10.0)));
        }
        let b = r.buffer_mut(0).unwrap();
        for (slot, p) in [(0, 1.0), (1, 1.0), (2, 1.0), (3, 7.0)] {
            b.set_priority(slot, p);
        }
        let mut rng = SeedStream::new(3);
        let mut hits = [0usize; 4];
        for _ in 0..1000 {
            let samples = b.sample(2, 0.5, || rng.uniform());
            let other = samples.iter().any(|s| s.slot != 3);
            for s in samples {
                hits[s.slot] += 1;
                // (N P)^-β over the largest: slot 3 (P = 0.7) weighs sqrt(0.1 / 0.7) of the others.
                let want = if s.slot == 3 && other { (1.0f64 / 7.0).sqrt() } else { 1.0 };
                assert!((s.weight as f64 - want).abs() < 1e-6, "slot {}: {}", s.slot, s.weight);
            }
        }
        let share = hits[3] as f64 / 2000.0;
        assert!((share - 0.7).abs() < 0.05, "{hits:?}");
        // New rows get the largest priority seen.
        r.record(row(0, 0, 4.0, None));
        assert_eq!(r.buffer(0).unwrap().priority(4), 7.0);
    }

    #[test]
    fn write_and_read_give_the_same_buffers() {
        let mut r = Replay::new(3, 2);
        r.record(row(0, 1, 1.0, Some(2.0)));
        r.record(row(0, 1, 2.0, Some(3.0)));
        r.record(row(1, 2, 4.0, None));
        r.record(row(0, 1, 3.0, Some(5.0)));
        r.record(row(0, 1, 5.0, Some(6.0)));
        r.buffer_mut(1).unwrap().set_priority(1, 0.25);
        let mut w = Writer::with_magic(b"T\n");
        r.write(&mut w);
        let mut back = Replay::new(3, 2);
        let mut rd = Reader::new(&w.0, b"T\n", "c2farm").unwrap();
        back.read(&mut rd).unwrap();
        assert!(rd.done());
        let mut again = Writer::with_magic(b"T\n");
        back.write(&mut again);
        assert_eq!(w.0, again.0, "a read buffer writes the same bytes");
        // The restored lane still shares the next observation.
        back.record(row(0, 1, 6.0, None));
        r.record(row(0, 1, 6.0, None));
        assert_eq!(back.buffer(1).unwrap().observations(), r.buffer(1).unwrap().observations());
        let e = back.read(&mut Reader::new(&w.0[..w.0.len() - 3], b"T\n", "c2farm").unwrap()).unwrap_err();
        assert!(e.message.contains("truncated"), "{}", e.message);
    }
}
