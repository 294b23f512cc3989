"""call_where: rows that do not need the call get zeros and are not computed, at any vmap depth."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.sparse_call import call_where


def _heavy(scale, x, extra):
    return {"sum": scale * x.sum() + extra, "twice": 2 * x}


def _expected(need, scale, x, extra):
    out = jax.vmap(_heavy, in_axes=(None, 0, 0))(scale, x, extra)
    return jax.tree_util.tree_map(lambda v: np.where(need.reshape((-1,) + (1,) * (v.ndim - 1)), v, 0), out)


def test_unbatched_is_a_cond():
    x = jnp.arange(3.0)
    got = jax.jit(lambda n: call_where(n, _heavy, 2.0, x, 1.0))(True)
    assert float(got["sum"]) == 7.0
    got = jax.jit(lambda n: call_where(n, _heavy, 2.0, x, 1.0))(False)
    assert float(got["sum"]) == 0.0 and not np.asarray(got["twice"]).any()


def test_vmapped_rows_match_and_skipped_rows_are_zero():
    key = jax.random.key(0)
    x = jax.random.normal(key, (16, 5))
    extra = jnp.arange(16.0)
    need = np.zeros(16, bool)
    need[[1, 7, 8, 15]] = True
    got = jax.jit(jax.vmap(lambda n, a, e: call_where(n, _heavy, 3.0, a, e)))(need, x, extra)
    want = _expected(need, 3.0, x, extra)
    np.testing.assert_allclose(got["sum"], want["sum"], rtol=1e-6)
    np.testing.assert_allclose(got["twice"], want["twice"], rtol=1e-6)


def test_nested_vmaps_fold_into_one_batch():
    x = jax.random.normal(jax.random.key(1), (3, 4, 5))
    scale = jnp.array([1.0, 2.0, 3.0])  # batched only by the outer vmap
    need = np.random.default_rng(0).random((3, 4)) < 0.5
    inner = lambda s, n, a: jax.vmap(lambda nn, aa: call_where(nn, _heavy, s, aa, 0.5))(n, a)  # noqa: E731
    got = jax.jit(jax.vmap(inner))(scale, need, x)
    for o in range(3):
        want = _expected(need[o], scale[o], x[o], jnp.full((4,), 0.5))
        np.testing.assert_allclose(got["sum"][o], want["sum"], rtol=1e-6)
        np.testing.assert_allclose(got["twice"][o], want["twice"], rtol=1e-6)


def test_only_needed_chunks_are_computed():
    rows_computed = []

    def counted(x):
        jax.debug.callback(lambda v: rows_computed.append(np.size(v)), x)
        return x * 2

    need = np.zeros(16, bool)
    need[[2, 9, 11]] = True  # 3 rows: one chunk of 16 // 4
    out = jax.jit(jax.vmap(lambda n, a: call_where(n, counted, a)))(need, jnp.arange(16.0))
    jax.effects_barrier()
    np.testing.assert_allclose(out, np.where(need, 2 * np.arange(16.0), 0))
    assert sum(rows_computed) == 4, rows_computed
    rows_computed.clear()
    jax.jit(jax.vmap(lambda n, a: call_where(n, counted, a)))(np.zeros(16, bool), jnp.arange(16.0))
    jax.effects_barrier()
    assert rows_computed == []
