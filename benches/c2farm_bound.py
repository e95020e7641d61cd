"""The compute bound of C2F-ARM on this CPU: the same network and update in plain PyTorch.

There is no runnable public peer here (stepjam/ARM needs RLBench and CoppeliaSim), so this is
the peer: plugins/algo-c2farm's network (src/net.rs) and learning step (src/learn.rs) written
with torch's own modules and ops, timed the way plugins/algo-c2farm/examples/c2farm_speed.rs
times the plugin, so that benches/c2farm.sh can print the two side by side.

The network, one per level (stepjam/ARM's Qattention3DNet as C2F-ARM configures it):

    voxels [B,10,G³] -> Inc(k) ─┐
    proprio -> Dense(k) -> tile ┴─ cat -> down0 Inc(k) ─────────────────────────────┐ d0 (G)
                                          │ maxpool 3/2                             │
                                  down1 Inc(2k) ──────────────────────┐ d1 (G/2)    │
                                          │ maxpool 3/2 (G > 8 only)  │             │
                                  down2 Inc(4k) -> up2 ─ cat ─────────┘             │
                                                      up1 (Inc, ×2 trilinear, Inc) ─ cat
                                                                  final Conv3 (k) ──┘ = f1
    translation Q  [B,1,G³]   = Conv3(f1 -> 1)
    rotation/grip Q [B,218] (last level) = Dense(h) -> Dense(h) -> Dense(218) over
        [spatial softmax (3 per channel) ; global max] of d0, d1, (d2,) f1

Inc(out) = cat(1x1 (out/2), 1x1 (latent) -> 3x3 (out/4), 1x1 (latent) -> 3x3 (latent) -> 3x3
(out/4)); LeakyReLU(0.02) after every layer but the output ones; 3x3x3 convolutions padded
by replicate (paper) or zeros (cpu-small). Sizes: paper k = 64, latent 32, h = 128; cpu-small
k = 16, latent 16, h = 64. The parameter count is printed and benches/c2farm.sh checks it
against the plugin's.

Measured, fp32, torch.set_num_threads(THREADS), each the median of STEPS runs after one
warm-up (as c2farm_speed does):

- act: voxelise one cloud of POINTS points into the scene box (scatter_add), level 0's
  forward at batch 1, its greedy voxel to the host, a ±0.15 m box around that voxel's centre,
  voxelise the same cloud there, level 1's forward, its greedy rotation/gripper bins to the
  host; all under torch.no_grad;
- forward: both levels' online nets on a batch of BATCH grids, no gradient;
- update: one learning step of both levels on BATCH pre-voxelised transitions: online and
  target nets on s' (no gradient; double-Q argmax of the online net, values of the target
  net), online nets on s, Smooth-L1 to max(0, r + γ mean_h Q'_h) plus the L1 Q regulariser,
  weighted, one backward pass, gradients clipped by value to 0.01, torch.optim.Adam
  (lr 5e-4, weight_decay 1e-6), Polyak targets (τ 0.0025), the new priorities, loss.item().

With DUMP, the file c2farm_speed writes with `dump=DUMP`, it first loads the plugin's weights
and checks that this network gives the plugin's Q-values on the plugin's grids.

Prints lines in c2farm_speed's format, the update last.

    python c2farm_bound.py paper|cpu-small BATCH STEPS THREADS POINTS GRID [DUMP]
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

LRELU = 0.02
TEMPERATURE = 0.01
FEATURES = 10
PROPRIO = 11
BINS = 72
ROT_GRIP = 3 * BINS + 2
SCENE = [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6]
OFFSET = 0.15
SIZES = {
    "paper": dict(kernels=64, latent=32, dense=128, zero_pad=False),
    "cpu-small": dict(kernels=16, latent=16, dense=64, zero_pad=True),
}


class Conv(torch.nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, act: bool, zero_pad: bool) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.replicate = self.pad > 0 and not zero_pad
        self.conv = torch.nn.Conv3d(cin, cout, kernel, padding=0 if self.replicate else self.pad)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.replicate:
            x = F.pad(x, (self.pad,) * 6, mode="replicate")
        y = self.conv(x)
        return F.leaky_relu(y, LRELU) if self.act else y


class Inception(torch.nn.Module):
    def __init__(self, cin: int, cout: int, latent: int, zero_pad: bool) -> None:
        super().__init__()
        cs = cout // 4
        self.one = Conv(cin, 2 * cs, 1, True, zero_pad)
        self.three = torch.nn.Sequential(Conv(cin, latent, 1, True, zero_pad), Conv(latent, cs, 3, True, zero_pad))
        self.five = torch.nn.Sequential(Conv(cin, latent, 1, True, zero_pad), Conv(latent, latent, 3, True, zero_pad),
                                        Conv(latent, cs, 3, True, zero_pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.one(x), self.three(x), self.five(x)], 1)


class Up(torch.nn.Module):
    def __init__(self, cin: int, cout: int, latent: int, zero_pad: bool) -> None:
        super().__init__()
        self.first = Inception(cin, cout, latent, zero_pad)
        self.second = Inception(cout, cout, latent, zero_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.first(x), scale_factor=2, mode="trilinear", align_corners=False)
        return self.second(y)


def summary(x: torch.Tensor) -> torch.Tensor:
    """Each channel's spatial-softmax expected position (3) and global max: [B, 4C]."""
    b, c, d, h, w = x.shape
    lin = lambda n: torch.linspace(-1.0, 1.0, n)  # noqa: E731
    pos = torch.stack([lin(d).view(d, 1, 1).expand(d, h, w), lin(h).view(1, h, 1).expand(d, h, w),
                       lin(w).view(1, 1, w).expand(d, h, w)], 3).view(d * h * w, 3)
    attention = (x.reshape(b * c, d * h * w) / TEMPERATURE).softmax(1)
    keypoints = (attention @ pos).view(b, c * 3)
    return torch.cat([keypoints, x.amax((2, 3, 4))], 1)


class QNet(torch.nn.Module):
    def __init__(self, grid: int, rot_grip: bool, kernels: int, latent: int, dense: int, zero_pad: bool) -> None:
        super().__init__()
        k, z = kernels, zero_pad
        self.input = Inception(FEATURES, k, latent, z)
        self.proprio = torch.nn.Linear(PROPRIO, k)
        self.deep = grid > 8
        # Declared in net.rs's order, so that parameters() lists them as the plugin does.
        down = [Inception(2 * k, k, latent, z), Inception(k, 2 * k, latent, z)]
        if self.deep:
            down.append(Inception(2 * k, 4 * k, latent, z))
        self.down = torch.nn.ModuleList(down)
        if self.deep:
            self.up2 = Up(4 * k, k, latent, z)
        self.up1 = Up(3 * k if self.deep else 2 * k, k, latent, z)
        self.final = Conv(2 * k, k, 3, True, z)
        self.trans = Conv(k, 1, 3, False, z)
        self.rot_grip = None
        if rot_grip:
            feats = sum(4 * c for c in [k, 2 * k, 4 * k][:len(down)]) + 4 * k
            self.rot_grip = torch.nn.Sequential(torch.nn.Linear(feats, dense), torch.nn.LeakyReLU(LRELU),
                                                torch.nn.Linear(dense, dense), torch.nn.LeakyReLU(LRELU),
                                                torch.nn.Linear(dense, ROT_GRIP))

    def forward(self, voxels: torch.Tensor, proprio: torch.Tensor):
        b, _, g = voxels.shape[:3]
        p = F.leaky_relu(self.proprio(proprio), LRELU)
        x = torch.cat([self.input(voxels), p.view(b, -1, 1, 1, 1).expand(-1, -1, g, g, g)], 1)
        pool = lambda t: F.max_pool3d(t, 3, 2, 1)  # noqa: E731
        d0 = self.down[0](x)
        d1 = self.down[1](pool(d0))
        d2 = self.down[2](pool(d1)) if self.deep else None
        u = torch.cat([d1, self.up2(d2)], 1) if self.deep else d1
        f1 = self.final(torch.cat([d0, self.up1(u)], 1))
        trans = self.trans(f1)
        rot_grip = None
        if self.rot_grip is not None:
            feats = [summary(t) for t in (d0, d1, d2, f1) if t is not None]
            rot_grip = self.rot_grip(torch.cat(feats, 1))
        return trans, rot_grip


def voxelise(points: torch.Tensor, rgb: torch.Tensor, bounds: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, N, 3] clouds in [B, 6] boxes to [B, 10, G, G, G] (mean xyz, mean rgb, index / G,
    occupancy), points outside [min, max) dropped; sums by scatter_add."""
    b, n, _ = points.shape
    lo, hi = bounds[:, None, :3], bounds[:, None, 3:]
    res = (hi - lo) / grid
    inside = ((points >= lo) & (points < hi)).all(2)
    ijk = ((points - lo) / res).nan_to_num(0.0).floor().clamp(0, grid - 1).long()
    cell = ijk[..., 0] * grid * grid + ijk[..., 1] * grid + ijk[..., 2]
    dump = b * grid ** 3
    flat = torch.where(inside, cell + torch.arange(b)[:, None] * grid ** 3, dump).view(-1)
    values = torch.cat([points.nan_to_num(0.0), rgb, torch.ones(b, n, 1)], 2).view(-1, 7)
    sums = torch.zeros(dump + 1, 7).scatter_add_(0, flat[:, None].expand(-1, 7), values)[:dump]
    count = sums[:, 6:7]
    means = (sums[:, :6] / count.clamp_min(1.0)).view(b, grid, grid, grid, 6).permute(0, 4, 1, 2, 3)
    occupied = (count > 0).float().view(b, 1, grid, grid, grid)
    r = torch.arange(grid, dtype=torch.float32) / grid
    index = torch.stack([r.view(-1, 1, 1).expand(grid, grid, grid), r.view(1, -1, 1).expand(grid, grid, grid),
                         r.view(1, 1, -1).expand(grid, grid, grid)], 0)[None].expand(b, 3, grid, grid, grid)
    return torch.cat([means, index, occupied], 1).contiguous()


def argmax_voxel(q: torch.Tensor) -> torch.Tensor:
    g = q.shape[2]
    flat = q.flatten(1).argmax(1)
    return torch.stack([flat // (g * g), (flat // g) % g, flat % g], 1)


def at_voxel(q: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    g = q.shape[2]
    flat = index[:, 0] * g * g + index[:, 1] * g + index[:, 2]
    return q.flatten(1).gather(1, flat[:, None]).squeeze(1)


def argmax_rot_grip(q: torch.Tensor) -> torch.Tensor:
    rot = q[:, :3 * BINS].view(-1, 3, BINS).argmax(2)
    return torch.cat([rot, q[:, 3 * BINS:].argmax(1, keepdim=True)], 1)


def at_rot_grip(q: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    rot = q[:, :3 * BINS].view(-1, 3, BINS).gather(2, choice[:, :3, None]).squeeze(2)
    return torch.cat([rot, q[:, 3 * BINS:].gather(1, choice[:, 3:])], 1)


class Level:
    def __init__(self, online: QNet, target: QNet) -> None:
        self.online, self.target = online, target
        target.load_state_dict(online.state_dict())
        target.requires_grad_(False)
        self.adam = torch.optim.Adam(online.parameters(), lr=5e-4, eps=1e-8, weight_decay=1e-6)


def update(levels, batch) -> float:
    """C2F-ARM's learning step on every level (learn.rs's `step`, per-level targets)."""
    proprio, next_proprio, rot_grip, rewards, discounts, weights = (batch[k] for k in (
        "proprio", "next_proprio", "rot_grip", "rewards", "discounts", "weights"))
    for level in levels:
        level.adam.zero_grad(set_to_none=True)
    targets = []
    with torch.no_grad():
        for level, lb in zip(levels, batch["levels"]):
            trans, rg = level.online(lb["next_voxels"], next_proprio)
            t_trans, t_rg = level.target(lb["next_voxels"], next_proprio)
            chosen = [at_voxel(t_trans, argmax_voxel(trans))[:, None]]
            if rg is not None:
                chosen.append(at_rot_grip(t_rg, argmax_rot_grip(rg)))
            chosen = torch.cat(chosen, 1)
            targets.append((rewards + discounts * chosen.mean(1)).clamp_min(0.0))
    total = torch.zeros(())
    deltas = []
    for level, lb, y in zip(levels, batch["levels"], targets):
        trans, rg = level.online(lb["voxels"], proprio)
        taken = [at_voxel(trans, lb["action"])[:, None]]
        reg = trans.abs().flatten(1).mean(1)
        if rg is not None:
            taken.append(at_rot_grip(rg, rot_grip))
            reg = reg + rg.abs().mean(1)
        taken = torch.cat(taken, 1)
        delta = F.smooth_l1_loss(taken, y[:, None].expand_as(taken), reduction="none", beta=1.0).mean(1)
        total = total + (weights * (delta + reg)).mean()
        deltas.append(delta.detach())
    total.backward()
    for level in levels:
        with torch.no_grad():
            for p in level.online.parameters():
                if p.grad is not None:
                    p.grad.clamp_(-0.01, 0.01)
        level.adam.step()
        with torch.no_grad():
            for t, o in zip(level.target.parameters(), level.online.parameters()):
                t.mul_(1.0 - 0.0025).add_(o * 0.0025)
    deltas = torch.stack(deltas, 1)
    p = (deltas + 1e-10).sqrt()
    _priorities = ((p / p.amax(0, keepdim=True)).sum(1)) ** 0.7
    return total.item()


def check(levels, path: str, grid: int) -> None:
    """Loads c2farm_speed's dump (its parameters, inputs and Q-values) into `levels` and
    compares this network's Q-values with the plugin's."""
    with open(path, "rb") as f:
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)  # little-endian, as on this CPU
    at = 0

    def take(*shape: int) -> torch.Tensor:
        nonlocal at
        n = 1
        for d in shape:
            n *= d
        t = data[at:at + n].view(*shape)
        at += n
        return t

    with torch.no_grad():
        for level in levels:
            for p in level.online.parameters():
                p.copy_(take(*p.shape))
            level.target.load_state_dict(level.online.state_dict())
        rows = (len(data) - at) // (FEATURES * grid ** 3 + PROPRIO + 2 * grid ** 3 + ROT_GRIP)
        voxels, proprio = take(rows, FEATURES, grid, grid, grid), take(rows, PROPRIO)
        want = [take(rows, 1, grid, grid, grid), take(rows, 1, grid, grid, grid), take(rows, ROT_GRIP)]
        if at != len(data):
            sys.exit(f"{path}: {len(data)} floats, expected {at}: not this size's network")
        got = [levels[0].online(voxels, proprio)[0], *levels[1].online(voxels, proprio)]
    worst = max(((g - w).abs().max() / w.abs().max().clamp_min(1e-6)).item() for g, w in zip(got, want))
    print(f"check: Q-values of the plugin's weights on {rows} of its grids agree within {worst:.1e} (relative to max |Q|)")
    if worst > 1e-4:
        sys.exit("the PyTorch network does not compute the plugin's Q-values")


def timed(steps: int, f) -> float:
    f()
    runs = []
    for _ in range(steps):
        start = time.perf_counter()
        f()
        runs.append(time.perf_counter() - start)
    return sorted(runs)[len(runs) // 2]


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "paper"
    batch, steps, threads, points, grid = (int(a) for a in (sys.argv[2:7] + ["8", "3", "1", "16384", "16"][len(sys.argv[2:7]):]))
    dump = sys.argv[7] if len(sys.argv) > 7 else None
    size = SIZES[name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    levels = [Level(QNet(grid, l == 1, **size), QNet(grid, l == 1, **size)) for l in range(2)]
    params = sum(p.numel() for level in levels for p in level.online.parameters())
    print(f"size {name} {size}, {params} parameters over 2 levels, {threads} thread(s), {points} points, torch {torch.__version__}")
    if dump:
        check(levels, dump, grid)

    lo, scene = torch.tensor(SCENE[:3]), torch.tensor(SCENE)
    cloud = lambda b: torch.rand(b, points, 3) + lo  # noqa: E731
    colours = lambda b: torch.rand(b, points, 3) * 2 - 1  # noqa: E731
    scene_bounds = lambda b: scene.view(1, 6).expand(b, 6)  # noqa: E731

    pts, rgb, proprio = cloud(1), colours(1), torch.rand(1, PROPRIO)
    res = [(SCENE[a + 3] - SCENE[a]) / grid for a in range(3)]

    def act() -> None:
        with torch.no_grad():
            v0 = voxelise(pts, rgb, scene_bounds(1), grid)
            i = argmax_voxel(levels[0].online(v0, proprio)[0]).view(-1).tolist()
            c = [SCENE[a] + (i[a] + 0.5) * res[a] for a in range(3)]
            b1 = torch.tensor([c[0] - OFFSET, c[1] - OFFSET, c[2] - OFFSET, c[0] + OFFSET, c[1] + OFFSET, c[2] + OFFSET]).view(1, 6)
            v1 = voxelise(pts, rgb, b1, grid)
            argmax_rot_grip(levels[1].online(v1, proprio)[1])[0].tolist()

    print(f"act (voxelise + 2 levels, batch 1): {timed(steps, act) * 1e3:.1f} ms")

    bp, bc = cloud(batch), colours(batch)
    vox = timed(steps, lambda: voxelise(bp, bc, scene_bounds(batch), grid))
    print(f"voxelise, batch {batch}: {vox * 1e3:.1f} ms")

    grids = lambda: voxelise(cloud(batch), colours(batch), scene_bounds(batch), grid)  # noqa: E731
    ints = lambda high, n: torch.randint(high, (batch, n))  # noqa: E731
    b = {
        "levels": [{"voxels": grids(), "next_voxels": grids(), "action": ints(grid, 3)} for _ in range(2)],
        "proprio": torch.rand(batch, PROPRIO),
        "next_proprio": torch.rand(batch, PROPRIO),
        "rot_grip": torch.cat([ints(BINS, 3), ints(2, 1)], 1),
        "rewards": (torch.rand(batch) >= 0.5).float(),
        "discounts": torch.full((batch,), 0.99),
        "weights": torch.ones(batch),
    }

    def forward() -> None:
        with torch.no_grad():
            for level, lb in zip(levels, b["levels"]):
                level.online(lb["voxels"], b["proprio"])

    print(f"forward, 2 levels, batch {batch}: {timed(steps, forward) * 1e3:.1f} ms")
    upd = timed(steps, lambda: update(levels, b))
    print(f"update step, 2 levels, batch {batch}: {upd * 1e3:.1f} ms ({1 / upd:.2f} updates/s)")


if __name__ == "__main__":
    main()
