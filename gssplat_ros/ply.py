"""Gaussians <-> PLY in the 3DGS format (readable by common splat viewers).

Usage:
    save_ply("scene.ply", gaussians)            # features become sem_* fields plus an argmax `label`
    gaussians = load_ply("scene.ply")

Fields: x, y, z, nx, ny, nz (zeros, as 3DGS writes them), f_dc_0..2, f_rest_* (channel-major, as in
3DGS), opacity (logit), scale_0..2 (log), rot_0..3 (wxyz), then optionally `label` (int32 class id)
and `sem_0..D-1` (float32 semantic features). Written binary little-endian; read binary of either
byte order or ASCII. Written with numpy rather than the `plyfile` package: the format here is one
flat vertex element, and numpy structured arrays read and write it in a few lines.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch

from gssplat_ros.errors import DataError
from gssplat_ros.gaussians import Gaussians, sh_degree_from_bases

log = logging.getLogger(__name__)

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_NP_TO_PLY = {"f4": "float", "i4": "int", "u1": "uchar", "f8": "double"}
_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def gaussians_to_array(g: Gaussians, with_labels: bool = True) -> np.ndarray:
    """Structured [N] array with the 3DGS vertex fields (plus label / sem_* when features exist)."""
    g = g.detach().to("cpu", torch.float32)
    n, k = len(g), g.sh.shape[1]
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (k - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    dtype = [(name, "<f4") for name in names]
    if g.features is not None and with_labels:
        dtype.append(("label", "<i4"))
        dtype += [(f"sem_{i}", "<f4") for i in range(g.num_features)]
    arr = np.zeros(n, dtype=dtype)
    cols = {}
    cols.update(zip(("x", "y", "z"), g.means.numpy().T))
    cols.update(zip(("f_dc_0", "f_dc_1", "f_dc_2"), g.sh[:, 0, :].numpy().T))
    rest = g.sh[:, 1:, :].transpose(1, 2).reshape(n, -1).numpy()  # [N, 3*(K-1)], channel-major
    cols.update({f"f_rest_{i}": rest[:, i] for i in range(rest.shape[1])})
    cols["opacity"] = _logit(g.opacities.numpy())
    cols.update(zip(("scale_0", "scale_1", "scale_2"), np.log(np.maximum(g.scales.numpy(), 1e-12)).T))
    cols.update(zip(("rot_0", "rot_1", "rot_2", "rot_3"), g.quats.numpy().T))
    if g.features is not None and with_labels:
        cols["label"] = g.features.argmax(-1).numpy().astype(np.int32)
        cols.update({f"sem_{i}": g.features[:, i].numpy() for i in range(g.num_features)})
    for name, values in cols.items():
        arr[name] = values
    return arr


def save_ply(path: str | Path, gaussians: Gaussians) -> int:
    """Write Gaussians as a binary little-endian 3DGS PLY; returns how many were written.

    Gaussians with a NaN / inf attribute are dropped (counted in a warning): a viewer cannot draw them.
    """
    finite, dropped = gaussians.without_nonfinite()
    if dropped:
        log.warning("%s: dropped %d of %d Gaussians with non-finite fields", path, dropped, len(gaussians))
    arr = gaussians_to_array(finite)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(arr)}"]
    for name in arr.dtype.names:
        header.append(f"property {_NP_TO_PLY[arr.dtype[name].str[1:]]} {name}")
    header.append("end_header")
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(arr.tobytes())
    return len(arr)


def _parse_count(line: str, path: Path) -> int:
    """`element NAME COUNT` -> COUNT, a non-negative decimal integer (numpy reads a negative one as 'all')."""
    parts = line.split()
    if len(parts) != 3 or not parts[2].isdigit():
        raise DataError(f"{path}: bad PLY header line '{line.strip()}' (expected 'element NAME COUNT', "
                        "COUNT a non-negative integer)")
    return int(parts[2])


def _parse_header(raw: bytes, path: Path) -> tuple[str, int, list[tuple[str, str]], int]:
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise DataError(f"{path}: not a PLY file (missing 'ply' magic or 'end_header')")
    newline = raw.find(b"\n", end)
    body_start = len(raw) if newline < 0 else newline + 1
    try:
        lines = raw[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: PLY header is not ASCII text") from None
    fmt, count, props, in_vertex = None, None, [], False
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1] if len(parts) > 1 else None
        elif parts[0] == "element":
            element_count = _parse_count(line, path)
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                count = element_count
            elif count is not None:
                break  # other elements after vertex (faces) are ignored
            elif element_count > 0:
                raise DataError(f"{path}: element '{parts[1]}' before 'vertex' is not supported")
        elif parts[0] == "property" and in_vertex:
            if len(parts) >= 2 and parts[1] == "list":
                raise DataError(f"{path}: unsupported vertex property '{line.strip()}' (lists)")
            if len(parts) != 3 or parts[1] not in _PLY_TYPES:
                raise DataError(f"{path}: bad vertex property '{line.strip()}' (expected 'property TYPE NAME', "
                                f"TYPE one of {', '.join(sorted(set(_PLY_TYPES)))})")
            if any(name == parts[2] for name, _ in props):
                raise DataError(f"{path}: vertex property '{parts[2]}' is declared twice")
            props.append((parts[2], _PLY_TYPES[parts[1]]))
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii") or count is None:
        raise DataError(f"{path}: PLY header lacks a supported format or a vertex element")
    return fmt, count, props, body_start


def _read_ascii_body(body: bytes, count: int, names: list[str], path: Path) -> np.ndarray:
    # Each vertex row needs at least one byte per field plus a separator: a header claiming more rows
    # than the body can hold fails here, before anything of `count` rows is allocated.
    if count * 2 * len(names) > len(body):
        raise DataError(f"{path}: PLY header declares {count} vertices but the body holds only "
                        f"{len(body)} bytes (truncated or a wrong count)")
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) < count:
        raise DataError(f"{path}: PLY header declares {count} vertices but the body has {len(lines)} rows")
    arr = np.zeros(count, dtype=[(n, "f8") for n in names])
    if count == 0:
        return arr
    rows = np.loadtxt([line.decode("ascii") for line in lines[:count]], ndmin=2)
    if rows.shape[1] != len(names):
        raise DataError(f"{path}: PLY rows have {rows.shape[1]} values, the header declares {len(names)}")
    for i, n in enumerate(names):
        arr[n] = rows[:, i]
    return arr


def load_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS PLY written by us or by 3DGS-compatible tools. Raises DataError (naming the file) if malformed.

    Gaussians with NaN / inf fields, or fields that overflow float32 when decoded, are dropped with a
    warning that counts them; a file where none remains is an error.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"PLY file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a PLY file") from None
    except OSError as exc:
        raise DataError(f"cannot read PLY file {path}: {exc.strerror or exc}") from None
    fmt, count, props, start = _parse_header(raw, path)
    names = [n for n, _ in props]
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
    required += [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)]
    missing = [n for n in required if n not in names]
    if missing:
        raise DataError(f"{path}: PLY lacks the 3DGS fields {missing}")
    try:
        if fmt == "ascii":
            arr = _read_ascii_body(raw[start:], count, names, path)
        else:
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(n, order + t) for n, t in props])
            if len(raw) - start < dtype.itemsize * count:
                raise DataError(f"{path}: PLY body is truncated ({count} vertices declared)")
            arr = np.frombuffer(raw, dtype=dtype, count=count, offset=start)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed PLY body: {exc}") from None
    with np.errstate(over="ignore", invalid="ignore"):  # doubles beyond float32 become inf, then dropped
        gaussians = array_to_gaussians(arr, path)
    finite, dropped = gaussians.without_nonfinite()
    if dropped == len(gaussians) and dropped > 0:
        raise DataError(f"{path}: all {dropped} Gaussians have non-finite fields (NaN, inf, or a value that "
                        "overflows float32, such as a log scale above 88)")
    if dropped:
        log.warning("%s: skipped %d of %d Gaussians with non-finite fields (NaN, inf or overflow)",
                    path, dropped, len(gaussians))
    return finite


def array_to_gaussians(arr: np.ndarray, source: str | Path = "<array>") -> Gaussians:
    names = arr.dtype.names
    col = lambda *ns: torch.from_numpy(np.stack([np.asarray(arr[n], dtype=np.float32) for n in ns], -1))  # noqa: E731
    n = len(arr)
    rest_names = sorted((x for x in names if x.startswith("f_rest_")), key=lambda x: int(x.split("_")[-1]))
    if len(rest_names) % 3:
        raise DataError(f"{source}: {len(rest_names)} f_rest fields is not a multiple of 3")
    k = 1 + len(rest_names) // 3
    try:
        sh_degree_from_bases(k)
    except ValueError:
        raise DataError(f"{source}: {len(rest_names)} f_rest fields is not an SH degree 0-3 layout") from None
    sh = torch.zeros(n, k, 3)
    sh[:, 0, :] = col("f_dc_0", "f_dc_1", "f_dc_2")
    if k > 1:
        sh[:, 1:, :] = col(*rest_names).reshape(n, 3, k - 1).transpose(1, 2)
    sem_names = sorted((x for x in names if re.fullmatch(r"sem_\d+", x)), key=lambda x: int(x[4:]))
    features = col(*sem_names) if sem_names else None
    quats = col("rot_0", "rot_1", "rot_2", "rot_3")
    norms = quats.norm(dim=-1, keepdim=True)
    if (norms < 1e-12).any():
        raise DataError(f"{source}: PLY has zero-length rotation quaternions")
    return Gaussians(
        means=col("x", "y", "z"),
        quats=quats / norms,
        scales=torch.exp(col("scale_0", "scale_1", "scale_2")),
        opacities=torch.sigmoid(col("opacity")[:, 0]),
        sh=sh,
        features=features,
    )
