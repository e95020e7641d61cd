"""The Python peer of benches/der.sh: data-efficient Rainbow in tianshou 2.0.1 on one ALE game.

Written for this benchmark against tianshou's public API (RainbowDQN, C51Policy, NoisyLinear,
PrioritizedVectorReplayBuffer, OffPolicyTrainer). Settings are DER's, as in metarl's
`preset = "der"`: DER conv encoder (32 and 64 channels, 5x5, stride 5), dueling NoisyLinear
heads of 256 units with sigma0 0.1, 51 atoms over [-10, 10], n = 20, gamma 0.99, Adam lr 1e-4
eps 1.5e-4, batch 32, PER (omega 0.5, beta 0.4 -> 1), target copy every 2000 updates, one
update per env step after 1600 steps of warm-up, one env. Environment: ale-py's gymnasium env
with gymnasium's AtariPreprocessing (4-frame skip with the max of the last 2, 84x84 grey, up
to 30 no-ops, life loss terminal) and a 4-frame stack, rewards clipped to their sign, the
minimal action set, no sticky actions. tianshou's replay keeps only the newest frame of each
stack (its Atari examples' setting). Not matched: tianshou has no gradient-norm clipping.

tianshou 2.0.1's trainer scans the whole replay buffer for NaNs after every collect
(`buffer.hasnull()` in `_collect_training_data`); with one env step per collect that scan
dominates and grows with the buffer (78 of 107 ms per step at 2k transitions under cProfile).
By default this script turns the scan off (`buffer.hasnull` answers False), which is the peer's
best case and the one benches/der.sh compares against; pass `stock` as a 4th argument to keep it.

Prints, last, `<steps/s> steps/s`: env steps over wall time of the training phase (after the
warm-up), acting and one update each.

    python der_tianshou.py GAME STEPS THREADS [stock]
"""

import sys
import time

import ale_py
import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward
from tianshou.algorithm.modelfree.c51 import C51Policy
from tianshou.algorithm.modelfree.rainbow import RainbowDQN
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, PrioritizedVectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.discrete import NoisyLinear

WARMUP = 1600
ATOMS = 51


def game_id(game: str) -> str:
    return "ALE/" + "".join(part.capitalize() for part in game.split("_")) + "-v5"


def make_env(game: str) -> gym.Env:
    gym.register_envs(ale_py)
    env = gym.make(game_id(game), frameskip=1, repeat_action_probability=0.0, full_action_space=False,
                   max_num_frames_per_episode=108_000)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=True,
                             grayscale_obs=True, scale_obs=False)
    env = FrameStackObservation(env, stack_size=4)
    return TransformReward(env, lambda r: float(np.sign(r)))


class DerNet(torch.nn.Module):
    """DER's network: the conv encoder, then dueling noisy heads giving action-atom probabilities."""

    def __init__(self, actions: int, hidden: int = 256, noisy_std: float = 0.1) -> None:
        super().__init__()
        self.actions = actions
        self.encoder = torch.nn.Sequential(
            torch.nn.Conv2d(4, 32, 5, stride=5), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 5, stride=5), torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        self.value = torch.nn.Sequential(NoisyLinear(576, hidden, noisy_std), torch.nn.ReLU(),
                                         NoisyLinear(hidden, ATOMS, noisy_std))
        self.advantage = torch.nn.Sequential(NoisyLinear(576, hidden, noisy_std), torch.nn.ReLU(),
                                             NoisyLinear(hidden, actions * ATOMS, noisy_std))

    def forward(self, obs, state=None, info=None):
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32) / 255.0
        h = self.encoder(x)
        v = self.value(h).view(-1, 1, ATOMS)
        a = self.advantage(h).view(-1, self.actions, ATOMS)
        logits = v + a - a.mean(dim=1, keepdim=True)
        return logits.softmax(dim=2), state


def main() -> None:
    game, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    stock = len(sys.argv) > 4 and sys.argv[4] == "stock"
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    np.random.seed(1)
    env = make_env(game)
    envs = DummyVectorEnv([lambda: make_env(game)])
    envs.seed(1)
    net = DerNet(env.action_space.n)
    policy = C51Policy(model=net, action_space=env.action_space, num_atoms=ATOMS, v_min=-10.0, v_max=10.0)
    algorithm = RainbowDQN(policy=policy, optim=AdamOptimizerFactory(lr=1e-4, eps=1.5e-4), gamma=0.99,
                           n_step_return_horizon=20, target_update_freq=2000)
    buffer = PrioritizedVectorReplayBuffer(100_000, buffer_num=1, alpha=0.5, beta=0.4, weight_norm=True,
                                           ignore_obs_next=True, save_only_last_obs=True, stack_num=4)
    if not stock:
        buffer.hasnull = lambda: False  # the per-step NaN scan of the whole buffer (see the top)
    collector = Collector(algorithm, envs, buffer, exploration_noise=True)
    collector.reset()
    collector.collect(n_step=WARMUP)

    def anneal_beta(epoch: int, env_step: int) -> None:
        buffer.set_beta(0.4 + 0.6 * min(1.0, env_step / max(1, steps)))

    params = OffPolicyTrainerParams(
        training_collector=collector, test_collector=None, max_epochs=1, epoch_num_steps=steps,
        collection_step_num_env_steps=1, update_step_num_gradient_steps_per_sample=1.0, batch_size=32,
        training_fn=anneal_beta, test_in_training=False, verbose=False, show_progress=False,
    )
    start = time.perf_counter()
    algorithm.run_training(params)
    elapsed = time.perf_counter() - start
    print(f"{steps / elapsed:.1f} steps/s")


if __name__ == "__main__":
    main()
