"""The compute bound of a DER training step on this CPU: the network's share of one update.

One DER update runs the DER network (benches/der_tianshou.py's architecture: conv 32 and 64,
5x5 stride 5, dueling heads of 256 units over 51 atoms) three times on a batch of 32 84x84x4
frames (online on s_t with gradients, online and target on s_{t+n} without) and back-propagates
once. Everything else a step does (replay sampling, the C51 projection, Adam, acting, the
emulator) is left out, so no implementation of DER on these libtorch kernels can step faster
than 1000 / <ms> steps/s. Measured in fp32 and under bf16 autocast.

Prints, last, `<ms> ms per update (fp32)`.

    python der_bound.py THREADS [ACTIONS]
"""

import sys
import time

import torch

BATCH, ATOMS = 32, 51


class DerNet(torch.nn.Module):
    def __init__(self, actions: int, hidden: int = 256) -> None:
        super().__init__()
        self.actions = actions
        self.encoder = torch.nn.Sequential(
            torch.nn.Conv2d(4, 32, 5, stride=5), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 5, stride=5), torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        self.value = torch.nn.Sequential(torch.nn.Linear(576, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, ATOMS))
        self.advantage = torch.nn.Sequential(torch.nn.Linear(576, hidden), torch.nn.ReLU(),
                                             torch.nn.Linear(hidden, actions * ATOMS))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        h = self.encoder(frames.permute(0, 3, 1, 2).float() / 255.0)
        v = self.value(h).view(-1, 1, ATOMS)
        a = self.advantage(h).view(-1, self.actions, ATOMS)
        return v + a - a.mean(dim=1, keepdim=True)


def ms_per_update(online: DerNet, target: DerNet, obs: torch.Tensor, next_obs: torch.Tensor, bf16: bool) -> float:
    def update() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                online(next_obs).float().softmax(2)
                target(next_obs).float().softmax(2)
            loss = online(obs).float().log_softmax(2).mean()
        online.zero_grad()
        loss.backward()

    for _ in range(10):
        update()
    reps = 100
    start = time.perf_counter()
    for _ in range(reps):
        update()
    return (time.perf_counter() - start) / reps * 1000


def main() -> None:
    threads = int(sys.argv[1])
    actions = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    online, target = DerNet(actions), DerNet(actions)
    obs = torch.randint(0, 256, (BATCH, 84, 84, 4), dtype=torch.uint8)
    next_obs = torch.randint(0, 256, (BATCH, 84, 84, 4), dtype=torch.uint8)
    bf16 = ms_per_update(online, target, obs, next_obs, True)
    fp32 = ms_per_update(online, target, obs, next_obs, False)
    print(f"{bf16:.1f} ms per update (bf16 autocast)")
    print(f"{fp32:.1f} ms per update (fp32)")


if __name__ == "__main__":
    main()
