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


def factored_log_probs(factor_logits: jax.Array, factors: tuple[int, ...]) -> jax.Array:
    """Joint log-probabilities [..., prod(factors)] of independent categorical parts.

    ``factor_logits`` [..., sum(factors)] holds each part's logits in turn; joint action
    ``a = ((i_0·f_1 + i_1)·f_2 + i_2)…`` (row-major, e.g. MPE's 5·message + move) has
    log p(a) = Σ_k log softmax(part_k)[i_k]. The result is a valid logits vector, so sampling,
    masking, log-probs and entropy (the sum of the parts') work unchanged downstream.
    """
    parts = jnp.split(factor_logits, np.cumsum(factors)[:-1], axis=-1)
    joint = jax.nn.log_softmax(parts[0])
    for part in parts[1:]:
        joint = joint[..., :, None] + jax.nn.log_softmax(part)[..., None, :]
        joint = joint.reshape(joint.shape[:-2] + (-1,))
    return joint


def _policy_head(x: jax.Array, num_actions: int, factors: tuple[int, ...] | None) -> jax.Array:
    """Logits of ``num_actions`` actions, or of a product of ``factors`` parts predicted independently."""
    if not factors:
        return _dense(num_actions, 0.01)(x)
    if int(np.prod(factors)) != num_actions:
        raise ValueError(f"action_factors {factors} do not multiply to num_actions = {num_actions}")
    return factored_log_probs(_dense(int(sum(factors)), 0.01)(x), tuple(factors))


def _trunk(x: jax.Array, hidden_sizes: tuple[int, ...], activation: str) -> jax.Array:
    for size in hidden_sizes:
        x = _ACTIVATIONS[activation](_dense(size)(x))
    return x


class MLPActorCritic(nn.Module):
    """Trunk (``hidden_sizes`` with ``activation``) → policy head (num_actions) and value head (1).

    With ``shared_trunk`` (default) both heads read one trunk; otherwise actor and critic have
    their own trunks of the same shape (PureJaxRL/JaxMARL style, usually better for MPE).
    With ``action_factors`` the policy predicts each part of a product action independently
    (:func:`factored_log_probs`; MPE simple_reference: message × move).
    For bargaining: 92 → 256 → 256, policy 82, value 1 (the original ``BargainMLP``, 110,931 parameters).
    """

    num_actions: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    shared_trunk: bool = True
    action_factors: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        actor = _trunk(obs, self.hidden_sizes, self.activation)
        critic = actor if self.shared_trunk else _trunk(obs, self.hidden_sizes, self.activation)
        logits = _policy_head(actor, self.num_actions, self.action_factors)
        value = _dense(1, 1.0)(critic)[..., 0]
        return logits, value


class MLPActor(nn.Module):
    """Policy only (logits): the decentralised actor of MAPPO; its critic is :class:`MLPCritic`."""

    num_actions: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    action_factors: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True) -> jax.Array:
        return _policy_head(_trunk(obs, self.hidden_sizes, self.activation), self.num_actions, self.action_factors)


class MLPCritic(nn.Module):
    """A value V(x) from any input (MAPPO: the global state plus the agent's one-hot id)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _dense(1, 1.0)(_trunk(x, self.hidden_sizes, self.activation))[..., 0]


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


class TherapyEncoder(nn.Module):
    """Therapy observation [client_action, session_number, history(50)] → 256-wide features:
    Embedding(8, 16) of the client action, a shared Embedding(9, 8) of the 50 history slots
    (flattened to 400), the session number as is; then ``hidden_size`` × 2 with ReLU."""

    hidden_size: int = 256

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        client = nn.Embed(8, 16, name="client_embedding")(jnp.clip(obs[..., 0].astype(jnp.int32), 0, 7))
        history = nn.Embed(9, 8, name="history_embedding")(jnp.clip(obs[..., 2:52].astype(jnp.int32), 0, 8))
        x = jnp.concatenate([client, obs[..., 1:2], history.reshape(history.shape[:-2] + (-1,)), obs[..., 52:]], -1)
        return _trunk(x, (self.hidden_size, self.hidden_size), "relu")


class TherapyNet(nn.Module):
    """The original's TherapyNet actor-critic (spec therapy.md §5.1): separate encoders for the
    actor (→ 8 logits) and the critic (→ 1), no shared weights. Extra observation entries after
    the 52 (the omniscient view) are appended to the encoder input."""

    num_actions: int = 8
    hidden_size: int = 256

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        logits = _dense(self.num_actions, 0.01)(TherapyEncoder(self.hidden_size, name="actor")(obs))
        value = _dense(1, 1.0)(TherapyEncoder(self.hidden_size, name="critic")(obs))[..., 0]
        return logits, value


NETWORKS = ("mlp", "mlp_actor", "transformer", "therapy")


def make_network(name: str, num_actions: int, *, num_items: int = 3, hidden_size: int = 256, num_layers: int = 2,
                 d_model: int = 128, num_heads: int = 4, ff_dim: int = 256, dropout: float = 0.1,
                 activation: str = "relu", shared_trunk: bool = True,
                 action_factors: tuple[int, ...] | None = None) -> nn.Module:
    """A network by name: ``mlp`` (actor-critic, ``num_layers`` hidden layers of ``hidden_size``),
    ``mlp_actor`` (logits only) or ``transformer``. ``action_factors``: see :func:`factored_log_probs`."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
    factors = tuple(int(f) for f in action_factors) if action_factors else None
    if name == "mlp":
        return MLPActorCritic(num_actions, (hidden_size,) * num_layers, activation, shared_trunk, factors)
    if name == "mlp_actor":
        return MLPActor(num_actions, (hidden_size,) * num_layers, activation, factors)
    if name == "transformer":
        return BargainTransformer(num_actions, num_items, d_model, num_heads, num_layers, ff_dim, dropout)
    if name == "therapy":
        return TherapyNet(num_actions, hidden_size)
    raise ValueError(f"unknown network {name!r}; valid networks: {', '.join(NETWORKS)}")


def count_params(params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def init_seat_params(network: nn.Module, key: jax.Array, dummy_obs: jax.Array, share_seats: bool,
                     num_seats: int = 2):
    """One network's params, or ``num_seats`` stacked [num_seats, ...] (one per seat/agent).

    The seats are initialised one after the other and stacked rather than with ``vmap``:
    a vmapped orthogonal initialiser becomes a *batched* LAPACK QR on CPU, whose parallel batch
    map can deadlock when the host has few cores (seen here on 2 cores, at random).
    """
    if share_seats:
        return network.init(key, dummy_obs)
    seats = [network.init(k, dummy_obs) for k in jax.random.split(key, num_seats)]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *seats)


def apply_seats(network: nn.Module, params, obs: jax.Array, seat: jax.Array, share_seats: bool,
                deterministic: bool = True, rngs=None):
    """The network's outputs for a batch of observations [B, obs], each by the network of its seat [B].

    With ``share_seats`` one network serves every seat (it reads the seat from the observation);
    otherwise ``params`` are stacked per seat [S, ...]: all S are evaluated, then each row's is picked.
    """
    if share_seats:
        return network.apply(params, obs, deterministic, rngs=rngs)
    outputs = jax.vmap(lambda p: network.apply(p, obs, deterministic, rngs=rngs))(params)  # [S, B, ...]
    num_seats = jax.tree_util.tree_leaves(params)[0].shape[0]
    pick = jax.nn.one_hot(seat, num_seats).T  # [S, B]

    def select(x):
        return (x * pick.reshape(pick.shape + (1,) * (x.ndim - 2)).astype(x.dtype)).sum(0)

    return jax.tree_util.tree_map(select, outputs)


def apply_agents(network: nn.Module, params, x: jax.Array, shared: bool, *args):
    """Outputs for inputs ``x`` [N, A, D] of all A agents: one shared parameter set, or a stack
    [A, ...] where agent a uses ``params[a]``. Returns outputs with leading axes [N, A]."""
    if shared:
        return network.apply(params, x, *args)
    return jax.vmap(lambda p, xa: network.apply(p, xa, *args), in_axes=(0, 1), out_axes=1)(params, x)


def with_agent_id(obs: jax.Array, agent_index, num_agents: int) -> jax.Array:
    """Append the one-hot id of ``agent_index`` (int or array broadcasting against obs[..., 0]) to obs."""
    one_hot = jax.nn.one_hot(jnp.broadcast_to(agent_index, obs.shape[:-1]), num_agents, dtype=obs.dtype)
    return jnp.concatenate([obs, one_hot], axis=-1)


def _logits(outputs) -> jax.Array:
    """Actor-critics return (logits, value); actor-only networks return logits."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def _network_spec(network_kwargs: dict) -> tuple[tuple[str, Any], ...]:
    """make_network kwargs as a hashable, order-independent key (JSON lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in network_kwargs.items()))


@dataclass(frozen=True)
class ActorCriticAct:
    """A trained actor (or actor-critic) as a Policy's act function: sampled (default) or greedy.

    Holds only a hashable description of the network (so equal policies share compiled programs
    and a run directory can rebuild it: see ``spec``/``from_spec`` and ``load_policy``).
    Which parameters act: one shared set (``share_seats``), or a stack indexed by the seat read
    from ``obs[seat_slot]`` (``agent_index`` −1, two-player games) or by the fixed ``agent_index``.
    With ``id_dims`` > 0 the one-hot of ``agent_index`` is appended to the observation.
    """

    network_spec: tuple[tuple[str, Any], ...]
    share_seats: bool = True
    seat_slot: int = 9  # observation slot holding the observer's seat
    sample: bool = True
    agent_index: int = -1  # fixed agent (multi-agent envs); -1: the seat comes from obs[seat_slot]
    id_dims: int = 0  # append a one-hot agent id of this size (0: none)
    num_seats: int = 2  # size of the parameter stack when not share_seats

    @property
    def network(self) -> nn.Module:
        return make_network(**dict(self.network_spec))

    def logits(self, params, obs: jax.Array, mask: jax.Array) -> jax.Array:
        """Masked logits of one observation."""
        return self.logits_and_value(params, obs, mask)[0]

    def logits_and_value(self, params, obs: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Masked logits and the value estimate of one observation (``None`` for actor-only networks):
        the prior and leaf evaluator of decision-time search."""
        if self.agent_index >= 0:
            seat = jnp.asarray(self.agent_index, jnp.int32)
        else:
            seat = jnp.round(obs[self.seat_slot]).astype(jnp.int32)
        if self.id_dims:
            obs = with_agent_id(obs, seat, self.id_dims)
        outputs = apply_seats(self.network, params, obs[None], seat[None], self.share_seats)
        value = outputs[1][0] if isinstance(outputs, tuple) else None
        return masked_logits(_logits(outputs)[0], mask), value

    def action_probs(self, params, obs: jax.Array, mask: jax.Array) -> jax.Array:
        """The policy's action distribution (exact; used by the communication metrics)."""
        return jax.nn.softmax(self.logits(params, obs, mask))

    def __call__(self, params, obs, mask, key):
        logits = self.logits(params, obs, mask)
        action = jax.random.categorical(key, logits) if self.sample else jnp.argmax(logits)
        return action.astype(jnp.int32)

    def spec(self) -> dict:
        return {"kind": "actor_critic", "network": dict(self.network_spec), "share_seats": self.share_seats,
                "seat_slot": self.seat_slot, "agent_index": self.agent_index, "id_dims": self.id_dims,
                "num_seats": self.num_seats}

    @classmethod
    def from_spec(cls, spec: dict, sample: bool = True) -> ActorCriticAct:
        return cls(_network_spec(spec["network"]), spec["share_seats"], spec["seat_slot"], sample,
                   spec.get("agent_index", -1), spec.get("id_dims", 0), spec.get("num_seats", 2))

    def init_params(self, key: jax.Array, obs_dim: int):
        """Parameters of the right structure (templates for restoring checkpoints)."""
        return init_seat_params(self.network, key, jnp.zeros((obs_dim + self.id_dims,)), self.share_seats,
                                self.num_seats)


def actor_critic_policy(network_kwargs: dict, params, *, share_seats: bool = True, seat_slot: int = 9,
                        sample: bool = True, name: str = "actor_critic", agent_index: int = -1,
                        id_dims: int = 0, num_seats: int = 2) -> Policy:
    """Wrap trained actor-critic ``params`` as a :class:`Policy` usable in evaluate/crossplay."""
    act = ActorCriticAct(_network_spec(network_kwargs), share_seats, seat_slot, sample, agent_index, id_dims,
                         num_seats)
    return Policy(params, act, name)


def team_policy(network_kwargs: dict, params, env, *, share: bool, agent_id: bool, sample: bool = True,
                name: str = "actor") -> Policy | tuple[Policy, ...]:
    """Trained actor ``params`` of a multi-agent learner as Policies for ``env``'s seats.

    One Policy for every seat when the agents share parameters and see no id, or when the env puts
    the observer's seat in the observation (``env.seat_slot``, e.g. bargain); otherwise a tuple
    with one Policy per agent (in ``env.agents`` order).
    """
    kwargs = dict(share_seats=share, sample=sample, name=name, num_seats=env.num_agents,
                  id_dims=env.num_agents if agent_id else 0)
    seat_slot = getattr(env, "seat_slot", None)
    if seat_slot is not None or (share and not agent_id):
        return actor_critic_policy(network_kwargs, params, seat_slot=seat_slot or 0, **kwargs)
    return tuple(actor_critic_policy(network_kwargs, params, agent_index=i, **kwargs) for i in range(env.num_agents))
