"""Device mesh (data, fsdp, tensor) and partition rules for base weights and batches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lift_jax.errors import ConfigError

if TYPE_CHECKING:  # models.loader imports this module
    from lift_jax.models.families import ModelFamily

MESH_AXES = ("data", "fsdp", "tensor")

# The attribute a LoRA wrapper (lift_jax.lora.LoRADense) keeps the layer it wraps in: a wrapped base weight is
# sharded like the unwrapped one.
LORA_WRAPPED_LAYER = "base"

PartitionRules = tuple[tuple[str, tuple[str | None, ...]], ...]


def partition_rules(family: ModelFamily) -> PartitionRules:
    """(regex on the '/'-joined parameter path, spec per dimension) for the base weights of `family`.

    Column-parallel linears split their output over `tensor`, row-parallel ones their input; fsdp takes the
    other dimension. A parameter no rule matches is replicated.
    """
    column, row = "|".join(family.column_parallel), "|".join(family.row_parallel)
    wrapped = f"(/{LORA_WRAPPED_LAYER})?"
    return (
        (rf"(^|/)({column}){wrapped}/kernel$", ("fsdp", "tensor")),
        (rf"(^|/)({column}){wrapped}/bias$", ("tensor",)),
        (rf"(^|/)({row}){wrapped}/kernel$", ("tensor", "fsdp")),
        (rf"(^|/){family.embedding}/weight$", ("tensor", "fsdp")),
        (rf"(^|/){family.output_head}/kernel$", ("fsdp", "tensor")),
    )


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all); one axis may be -1 to take the rest.

    Fully explicit sizes may cover fewer devices than given: the first ones are used.
    """
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ConfigError(f"at most one mesh axis may be -1, got data={data} fsdp={fsdp} tensor={tensor}")
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        if len(devices) % known:
            raise ConfigError(f"{len(devices)} devices are not divisible by the fixed mesh axes ({known})")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) < len(devices):
        devices = devices[: int(np.prod(sizes))]  # explicit sizes may use a subset (e.g. one device)
    if int(np.prod(sizes)) != len(devices):
        raise ConfigError(
            f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} needs {int(np.prod(sizes))} devices, "
            f"{len(devices)} are available"
        )
    return Mesh(np.array(devices).reshape(sizes), MESH_AXES)


def _fit(spec: tuple[str | None, ...], shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
    """Drop axes that do not divide their dimension (replicating that dimension instead)."""
    fitted = [
        axis if axis is not None and dim % mesh.shape[axis] == 0 and mesh.shape[axis] > 1 else None
        for axis, dim in zip(spec, shape, strict=True)
    ]
    return PartitionSpec(*fitted)


def param_partition_spec(path: str, shape: tuple[int, ...], mesh: Mesh, family: ModelFamily) -> PartitionSpec:
    """PartitionSpec of the base parameter of a `family` decoder at `path` ('/'-joined) with `shape` on `mesh`."""
    for pattern, spec in partition_rules(family):
        if re.search(pattern, path) and len(spec) == len(shape):
            return _fit(spec, shape, mesh)
    return PartitionSpec()


def param_sharding(path: str, shape: tuple[int, ...], mesh: Mesh, family: ModelFamily) -> NamedSharding:
    """NamedSharding for a base parameter of a `family` decoder."""
    return NamedSharding(mesh, param_partition_spec(path, shape, mesh, family))


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Batch arrays split on their leading dimension over the data and fsdp axes."""
    return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def shard_params(tree: Any, mesh: Mesh, family: ModelFamily) -> Any:
    """Place every leaf of a `family` decoder's parameter tree (an nnx.State or nested dict) on its
    partition-rule sharding."""

    def place(path: tuple, leaf: jax.Array) -> jax.Array:
        # Dict keys and sequence indices name the parameter; attribute keys (a Variable's `.value`) do not.
        parts = [getattr(k, "key", getattr(k, "idx", None)) for k in path]
        name = "/".join(str(p) for p in parts if p is not None)
        return jax.device_put(leaf, param_sharding(name, leaf.shape, mesh, family))

    return jax.tree_util.tree_map_with_path(place, tree)
