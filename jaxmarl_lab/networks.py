"""Networks shared by the algorithms: MLP actor-critic and the 5-token bargaining transformer.

Both map one agent's observation to ``(logits, value)``; illegal actions are masked by the caller
with :func:`jaxmarl_lab.policies.masked_logits` (so the same module serves masked and unmasked
envs). Build them by name with :func:`make_network`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.policies import Policy, masked_logits

_ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


def _dense(features: int, scale: float = np.sqrt(2)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class MLPActorCritic(nn.Module):
    """Shared trunk (``hidden_sizes`` with ``activation``) → policy head (num_actions) and value head (1).

    For bargaining: 92 → 256 → 256, policy 82, value 1 (the original ``BargainMLP``, 110,931 parameters).
    """

    num_actions: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        act = _ACTIVATIONS[self.activation]
        x = obs
        for size in self.hidden_sizes:
            x = act(_dense(size)(x))
        logits = _dense(self.num_actions, 0.01)(x)
        value = _dense(1, 1.0)(x)[..., 0]
        return logits, value


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer encoder layer with ReLU feed-forward (PyTorch's default layout)."""

    d_model: int
    num_heads: int
    ff_dim: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        attn = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, qkv_features=self.d_model,
                                               dropout_rate=self.dropout, deterministic=deterministic)(x, x)
        x = nn.LayerNorm()(x + nn.Dropout(self.dropout, deterministic=deterministic)(attn))
        ff = nn.Dense(self.d_model)(nn.Dropout(self.dropout, deterministic=deterministic)(
            nn.relu(nn.Dense(self.ff_dim)(x))))
        return nn.LayerNorm()(x + nn.Dropout(self.dropout, deterministic=deterministic)(ff))


class BargainTransformer(nn.Module):
    """The 5-token bargaining encoder (spec bargain.md §2.3).

    Tokens, each with its own linear embedding to ``d_model``: own values [k], outside offer [1],
    offer on the table [k], (offer-valid, round, seat) [3], legal mask [num_actions]; plus a learned
    positional embedding N(0, 0.02²); ``num_layers`` encoder layers; mean over tokens; two-layer
    policy and value heads. Dropout is active only when ``deterministic=False`` (PPO updates).
    """

    num_actions: int
    num_items: int = 3
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.1

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        k = self.num_items
        bounds = [0, k, k + 1, 2 * k + 1, 2 * k + 4, obs.shape[-1]]
        tokens = jnp.stack([nn.Dense(self.d_model, name=f"embed_{i}")(obs[..., lo:hi])
                            for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))], axis=-2)
        position = self.param("position", nn.initializers.normal(0.02), (5, self.d_model))
        x = tokens + position
        for _ in range(self.num_layers):
            x = EncoderLayer(self.d_model, self.num_heads, self.ff_dim, self.dropout)(x, deterministic)
        pooled = x.mean(axis=-2)
        logits = nn.Dense(self.num_actions)(nn.relu(nn.Dense(256)(pooled)))
        value = nn.Dense(1)(nn.relu(nn.Dense(256)(pooled)))[..., 0]
        return logits, value


NETWORKS = ("mlp", "transformer")


def make_network(name: str, num_actions: int, *, num_items: int = 3, hidden_size: int = 256, num_layers: int = 2,
                 d_model: int = 128, num_heads: int = 4, ff_dim: int = 256, dropout: float = 0.1,
                 activation: str = "relu") -> nn.Module:
    """A network by name: ``mlp`` (``num_layers`` hidden layers of ``hidden_size``) or ``transformer``."""
    if name == "mlp":
        return MLPActorCritic(num_actions, (hidden_size,) * num_layers, activation)
    if name == "transformer":
        return BargainTransformer(num_actions, num_items, d_model, num_heads, num_layers, ff_dim, dropout)
    raise ValueError(f"unknown network {name!r}; valid networks: {', '.join(NETWORKS)}")


def count_params(params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def init_seat_params(network: nn.Module, key: jax.Array, dummy_obs: jax.Array, share_seats: bool):
    """One network's params, or two stacked [2, ...] (one per seat).

    The two seats are initialised one after the other and stacked rather than with ``vmap``:
    a vmapped orthogonal initialiser becomes a *batched* LAPACK QR on CPU, whose parallel batch
    map can deadlock when the host has few cores (seen here on 2 cores, at random).
    """
    if share_seats:
        return network.init(key, dummy_obs)
    seats = [network.init(k, dummy_obs) for k in jax.random.split(key, 2)]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *seats)


def apply_seats(network: nn.Module, params, obs: jax.Array, seat: jax.Array, share_seats: bool,
                deterministic: bool = True, rngs=None) -> tuple[jax.Array, jax.Array]:
    """(logits, value) for a batch of observations [B, obs], each by the network of its seat [B].

    With ``share_seats`` one network serves both seats (it reads the seat from the observation);
    otherwise ``params`` are stacked per seat [2, ...] and both are evaluated, then selected.
    """
    if share_seats:
        return network.apply(params, obs, deterministic, rngs=rngs)
    logits, value = jax.vmap(lambda p: network.apply(p, obs, deterministic, rngs=rngs))(params)  # [2, B, ...]
    pick = jax.nn.one_hot(seat, 2, dtype=logits.dtype).T  # [2, B]
    return (logits * pick[..., None]).sum(0), (value * pick).sum(0)


@dataclass(frozen=True)
class ActorCriticAct:
    """A trained actor-critic as a Policy's act function: sampled (default) or greedy actions.

    Holds only a hashable description of the network (so equal policies share compiled programs
    and a run directory can rebuild it: see ``spec``/``from_spec`` and ``load_policy``).
    """

    network_spec: tuple[tuple[str, Any], ...]
    share_seats: bool = True
    seat_slot: int = 9  # observation slot holding the observer's seat
    sample: bool = True

    @property
    def network(self) -> nn.Module:
        return make_network(**dict(self.network_spec))

    def __call__(self, params, obs, mask, key):
        seat = jnp.round(obs[self.seat_slot]).astype(jnp.int32)
        logits, _ = apply_seats(self.network, params, obs[None], seat[None], self.share_seats)
        logits = masked_logits(logits[0], mask)
        action = jax.random.categorical(key, logits) if self.sample else jnp.argmax(logits)
        return action.astype(jnp.int32)

    def spec(self) -> dict:
        return {"kind": "actor_critic", "network": dict(self.network_spec), "share_seats": self.share_seats,
                "seat_slot": self.seat_slot}

    @classmethod
    def from_spec(cls, spec: dict, sample: bool = True) -> ActorCriticAct:
        return cls(tuple(sorted(spec["network"].items())), spec["share_seats"], spec["seat_slot"], sample)

    def init_params(self, key: jax.Array, obs_dim: int):
        """Parameters of the right structure (templates for restoring checkpoints)."""
        return init_seat_params(self.network, key, jnp.zeros((obs_dim,)), self.share_seats)


def actor_critic_policy(network_kwargs: dict, params, *, share_seats: bool = True, seat_slot: int = 9,
                        sample: bool = True, name: str = "actor_critic") -> Policy:
    """Wrap trained actor-critic ``params`` as a :class:`Policy` usable in evaluate/crossplay."""
    act = ActorCriticAct(tuple(sorted(network_kwargs.items())), share_seats, seat_slot, sample)
    return Policy(params, act, name)
