"""The trainers' one mini-batching convention (fairjax._loop.scan_steps), against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import _loop


def _rows_seen(num_rows, batch_size, num_steps, step_keys=False):
    data = jnp.arange(num_rows)

    def body(c, batch, k):
        return c + 1, (batch, k)

    n, (seen, keys) = _loop.scan_steps(
        body,
        0,
        data,
        num_steps=num_steps,
        batch_size=batch_size,
        key=jax.random.PRNGKey(3),
        step_keys=step_keys,
    )
    return int(n), np.asarray(seen), keys


def test_each_epoch_sees_every_row_once_then_a_partial_epoch():
    # 10 rows, batches of 3: 3 steps per epoch (one row dropped per shuffle), 7 steps.
    n, seen, _ = _rows_seen(10, 3, 7)
    assert n == 7 and seen.shape == (7, 3)
    for e in range(2):
        epoch = seen[3 * e : 3 * e + 3].ravel()
        assert len(set(epoch.tolist())) == 9  # no row twice within an epoch
    assert not np.array_equal(seen[:3], seen[3:6])  # a new shuffle each epoch


def test_full_batch_feeds_the_data_and_per_step_keys_are_distinct():
    def body(c, batch, k):
        return c, (batch.sum(), k)

    _, (sums, keys) = _loop.scan_steps(
        body, 0, jnp.arange(5.0), num_steps=4, key=jax.random.PRNGKey(0), step_keys=True
    )
    np.testing.assert_array_equal(np.asarray(sums), [10.0] * 4)
    assert len({tuple(np.asarray(k).tolist()) for k in keys}) == 4
    _, (_, keys) = _loop.scan_steps(body, 0, jnp.arange(5.0), num_steps=2)
    assert keys is None


def test_key_is_required_for_batches_and_streams_are_told_apart():
    with pytest.raises(ValueError, match="`key` is required"):
        _loop.scan_steps(lambda c, b, k: (c, None), 0, jnp.arange(4), num_steps=1, batch_size=2)
    assert _loop.is_stream(iter([1])) and _loop.is_stream(x for x in [1])
    assert not _loop.is_stream((jnp.ones(3), np.ones(3))) and not _loop.is_stream([np.ones(2)])
    assert not _loop.is_stream({"x": np.ones(2)}) and not _loop.is_stream(None)

    class Loader:  # a data loader: iterable, not an iterator, a leaf for JAX
        def __iter__(self):
            yield np.ones(2)

    assert _loop.is_stream(Loader())
