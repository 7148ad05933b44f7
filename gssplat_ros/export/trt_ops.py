"""TensorRT 10.3 ONNX operator support table and a graph checker that names every offending node.

Usage:
    problems = check_model(onnx.load("tiny_sensor_v4_160x120_fp32.onnx"))   # [] when TensorRT 10.3 can parse it
    assert_tensorrt_compatible(model)        # raises TensorRTCompatibilityError naming each bad node and op

    python -m gssplat_ros.export check tiny_sensor_v4_160x120_fp32.onnx

Source: onnx-tensorrt `docs/operators.md` (the support matrix) and `docs/Changelog.md`. The table below is
the 10.x matrix with every entry that the changelog dates after 10.3 taken back out:
10.4 tensor `axes` for Pad, Blackman/Hamming/Hann windows; 10.5 STFT; 10.7 dynamic axes for
Squeeze/Unsqueeze; 10.8 dynamic CumSum axes, integer Pow exponents; 10.9 opset-21 GroupNormalization;
10.12 ellipsis / diagonal / broadcasting Einsum, integer Pow bases; 10.14 Attention; 10.15
RotaryEmbedding, RMSNormalization, TensorScatter. 10.3 itself added tensor `axes` for Slice.
Field experience adds two rules the tables do not state: 5-D GridSample fails to build (seen on 10.6),
and opset-20 GridSample gave wrong results (seen on 10.13) - export at opset 18.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

TRT_VERSION = "10.3"
OPSET_RANGE = (9, 20)  # inclusive range of the default-domain opset TensorRT 10.3 parses
RECOMMENDED_OPSET = 18

_F = ("FP32", "FP16", "BF16")
_FI = (*_F, "INT32", "INT64")
_FIB = (*_FI, "BOOL")
_B = ("BOOL",)
_F16 = ("FP32", "FP16")


def _ops(names: str) -> list[str]:
    return names.split()


@dataclass(frozen=True)
class OpSupport:
    types: tuple[str, ...]  # element types of the op's data tensor ("Supported Types" column)
    restriction: str = ""  # the "Restrictions" column, checked below where it can be from the graph


_AXES_CONST = "`axes` must be an initializer or Constant in 10.3"
_REDUCE = OpSupport(_FI, _AXES_CONST)
_POOL = OpSupport(_F, "2D or 3D pooling only; `dilations` empty or all ones")

# Operators TensorRT 10.3's ONNX parser imports (name -> types, restriction).
SUPPORTED: dict[str, OpSupport] = {
    **dict.fromkeys(
        _ops(
            """
            Acos Acosh Asin Asinh Atan Atanh BatchNormalization Ceil Celu Clip Conv ConvTranspose Cos Cosh Elu Erf
            Exp Floor Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool GroupNormalization GRU HardSigmoid
            HardSwish ImageScaler InstanceNormalization IsInf LeakyRelu Log LogSoftmax LRN LpNormalization MatMul
            MeanVarianceNormalization ParametricSoftplus PRelu QuantizeLinear RandomNormal RandomNormalLike
            RandomUniform RandomUniformLike Reciprocal RNN Round ScaledTanh Scan Selu Sigmoid Sin Sinh Softmax
            Softplus Softsign Sqrt Tan Tanh ThresholdedRelu Upsample
            """
        ),
        OpSupport(_F),
    ),
    **dict.fromkeys(
        _ops(
            """
            Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN Less LessOrEqual Max Mean Min
            Mod Mul Neg Range Relu Scatter ScatterElements Shrink Sign SpaceToDepth Sub Sum
            """
        ),
        OpSupport(_FI),
    ),
    **dict.fromkeys(
        _ops(
            """
            Concat ConstantOfShape Expand Flatten Gather GatherElements GatherND Identity If Reshape
            ReverseSequence Shape Size Slice Split Tile Transpose Trilu Where
            """
        ),
        OpSupport(_FIB),
    ),
    **dict.fromkeys(("And", "Not", "Or", "Xor"), OpSupport(_B)),
    "AveragePool": _POOL,
    "LpPool": OpSupport(_F, "`dilations` empty or all ones"),
    "MaxPool": OpSupport(_F, "2D or 3D pooling only; no `Indices` output; `dilations` empty or all ones"),
    "Cast": OpSupport((*_FI, "UINT8", "BOOL")),
    "CastLike": OpSupport((*_FI, "UINT8", "BOOL")),
    "Constant": OpSupport(_FIB, "`sparse_value`, `value_string` and `value_strings` unsupported"),
    "CumSum": OpSupport(_F, "`axis` must be an initializer or Constant (dynamic axes only from 10.8)"),
    "DeformConv": OpSupport(_F16, "1D or 2D spatial input; equal begin/end pads"),
    "DequantizeLinear": OpSupport(("INT8", "FP8", "INT4"), "`x_zero_point` must be zero"),
    "Dropout": OpSupport(_F, "`training_mode` must be a constant False"),
    "Einsum": OpSupport(_F, "no ellipsis, diagonal or broadcasting before 10.12"),
    "EyeLike": OpSupport(_FIB, "input must have static dimensions"),
    "GridSample": OpSupport(_F16, "4-D input only (5-D fails); prefer opset 18 (opset 20 wrong on 10.13)"),
    "Hardmax": OpSupport(_F, "`axis` dimension must be a build-time constant"),
    "LayerNormalization": OpSupport(_F, "only the first output `Y`"),
    "Loop": OpSupport(_FIB, "scan outputs of static length; loop-carried shapes constant"),
    "LSTM": OpSupport(_F, "`input_forget` = 0 and `layout` = 0"),
    "Mish": OpSupport(_F16),
    "NonMaxSuppression": OpSupport(_F16),
    "NonZero": OpSupport(_F16),
    "OneHot": OpSupport(_FIB, "`depth` must be a build-time constant"),
    "Pad": OpSupport(_FI, "`axes` must be an initializer or Constant (tensor axes only from 10.4)"),
    "Pow": OpSupport(_F, "floating-point base and exponent (integer Pow only from 10.8/10.12)"),
    "Resize": OpSupport(_F, "modes nearest/linear; no antialias; aspect policy stretch; listed transforms only"),
    "RoiAlign": OpSupport(_F16),
    "ScatterND": OpSupport(_FI, "`reduction` must be none"),
    "Squeeze": OpSupport(_FIB, "`axes` must be an initializer or Constant (dynamic axes only from 10.7)"),
    "TopK": OpSupport(_FI, "`K` a build-time constant below 3840"),
    "Unsqueeze": OpSupport(_FIB, "`axes` must be an initializer or Constant (dynamic axes only from 10.7)"),
    **dict.fromkeys(
        _ops(
            """
            ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
            ReduceSumSquare
            """
        ),
        _REDUCE,
    ),
}

# Operators the 10.3 parser rejects ("N" rows, plus those first supported after 10.3).
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        _ops(
            """
            AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im CenterCropPad Compress
            ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool
            MaxUnpool MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement
            OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty
            SequenceErase SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence
            StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
            """
        ),
        "not supported",
    ),
    **{op: "first supported in 10.4" for op in ("BlackmanWindow", "HammingWindow", "HannWindow")},
    "STFT": "first supported in 10.5",
    "Attention": "first supported in 10.14",
    **{op: "first supported in 10.15" for op in ("RotaryEmbedding", "RMSNormalization", "TensorScatter")},
}

_RESIZE_TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
_RESIZE_NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
_ONNX_TYPES = {1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 11: "DOUBLE",
               16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8", 22: "INT4", 8: "STRING"}  # fmt: skip


@dataclass(frozen=True)
class Problem:
    node: str  # node name (or "<model>")
    op: str  # op type
    message: str
    severity: str = "error"  # error: the 10.3 parser / builder rejects it or computes it wrongly; warning

    def __str__(self) -> str:
        return f"{self.severity}: node '{self.node}' ({self.op}): {self.message}"


class TensorRTCompatibilityError(ValueError):
    """The graph uses an operator or an operator form that TensorRT 10.3 cannot build."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        ops = sorted({p.op for p in errors})
        lines = "\n  ".join(str(p) for p in errors)
        super().__init__(f"graph is not TensorRT {TRT_VERSION} compatible ({', '.join(ops)}):\n  {lines}")


# ------------------------------------------------------------------------------------------------ graph view
class _Graph:
    """Constants, ranks and element types of one (sub)graph, from ONNX shape inference."""

    def __init__(self, graph, outer: Optional[_Graph] = None):
        from onnx import numpy_helper

        self.outer = outer
        self.constants: dict[str, object] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and len(node.output) == 1:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attr.t)
                    elif attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
                        import onnx

                        self.constants[node.output[0]] = onnx.helper.get_attribute_value(attr)
        self.types: dict[str, tuple[Optional[str], Optional[int]]] = {}
        for value in (*graph.input, *graph.value_info, *graph.output):
            tt = value.type.tensor_type
            rank = len(tt.shape.dim) if tt.HasField("shape") else None
            self.types[value.name] = (_ONNX_TYPES.get(tt.elem_type), rank)
        for tensor in graph.initializer:
            self.types[tensor.name] = (_ONNX_TYPES.get(tensor.data_type), len(tensor.dims))

    def constant(self, name: str):
        if name in self.constants:
            return self.constants[name]
        return self.outer.constant(name) if self.outer else None

    def is_constant(self, name: str) -> bool:
        return name in self.constants or (self.outer is not None and self.outer.is_constant(name))

    def dtype(self, name: str) -> Optional[str]:
        got = self.types.get(name)
        if got is None and self.outer:
            return self.outer.dtype(name)
        return got[0] if got else None

    def rank(self, name: str) -> Optional[int]:
        got = self.types.get(name)
        if got is None and self.outer:
            return self.outer.rank(name)
        return got[1] if got else None


def _attr(node, name: str, default=None):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _input(node, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


# ------------------------------------------------------------------------------------------------ rules
def _need_const(g: _Graph, node, index: int, what: str) -> Optional[str]:
    name = _input(node, index)
    if name and not g.is_constant(name):
        return f"{what} input '{name}' is computed at run time; TensorRT {TRT_VERSION} needs an initializer or Constant"
    return None


def _check_gridsample(g: _Graph, node, opset: int) -> list[str]:
    out = []
    rank = g.rank(_input(node, 0))
    if rank is not None and rank != 4:
        out.append(f"{rank}-D GridSample; TensorRT builds 4-D GridSample only (fold depth into height)")
    if opset >= 20:
        out.append("GridSample at opset >= 20 gave wrong results on TensorRT 10.13; export at opset 18")
    mode = _attr(node, "mode", "bilinear")
    if mode not in ("bilinear", "linear", "nearest", "bicubic", "cubic"):
        out.append(f"GridSample mode {mode!r} unsupported")
    return out


def _check_einsum(g: _Graph, node, opset: int) -> list[str]:
    eq = (_attr(node, "equation", "") or "").replace(" ", "")
    out = []
    if "..." in eq:
        out.append(f"ellipsis Einsum '{eq}' unsupported before onnx-tensorrt 10.12; spell out every axis")
    for term in eq.split("->")[0].split(","):
        letters = term.replace("...", "")
        if len(set(letters)) != len(letters):
            out.append(f"diagonal Einsum term '{term}' (repeated index) unsupported before 10.12")
    return out


def _check_axes_input(index: int, what: str = "`axes`"):
    def rule(g: _Graph, node, opset: int) -> list[str]:
        msg = _need_const(g, node, index, what)
        return [msg] if msg else []

    return rule


def _check_pad(g: _Graph, node, opset: int) -> list[str]:
    msg = _need_const(g, node, 3, "`axes`")
    return [msg] if msg else []


def _check_pool(g: _Graph, node, opset: int) -> list[str]:
    out = []
    rank = g.rank(_input(node, 0))
    if node.op_type in ("AveragePool", "MaxPool") and rank is not None and rank not in (4, 5):
        out.append(f"{rank - 2}-D pooling; TensorRT pools 2D or 3D only")
    dil = _attr(node, "dilations", None)
    if dil and any(d != 1 for d in dil):
        out.append(f"dilations {list(dil)} unsupported (must be all ones)")
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        out.append("the `Indices` output is unsupported")
    return out


def _check_resize(g: _Graph, node, opset: int) -> list[str]:
    out = []
    mode = _attr(node, "mode", "nearest")
    if mode not in ("nearest", "linear"):
        out.append(f"Resize mode {mode!r} unsupported (nearest, linear)")
    transform = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if transform not in _RESIZE_TRANSFORMS:
        out.append(f"Resize coordinate_transformation_mode {transform!r} unsupported")
    nearest = _attr(node, "nearest_mode", "round_prefer_floor")
    if mode == "nearest" and nearest not in _RESIZE_NEAREST:
        out.append(f"Resize nearest_mode {nearest!r} unsupported")
    if _attr(node, "antialias", 0):
        out.append("Resize antialiasing unsupported")
    if _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        out.append("Resize keep_aspect_ratio_policy must be 'stretch'")
    return out


def _check_topk(g: _Graph, node, opset: int) -> list[str]:
    out = []
    if opset >= 10:
        k = g.constant(_input(node, 1))
        if k is None:
            out.append(f"TopK `K` input '{_input(node, 1)}' is computed at run time; make it a constant")
        elif int(_first(k)) >= 3840:
            out.append(f"TopK K={int(_first(k))} >= 3840 unsupported")
    elif _attr(node, "k", 0) >= 3840:
        out.append(f"TopK k={_attr(node, 'k')} >= 3840 unsupported")
    if _attr(node, "sorted", 1) != 1:
        out.append("TopK sorted=0 unsupported")
    return out


def _first(value):
    import numpy as np

    return np.asarray(value).reshape(-1)[0]


def _check_scatter_nd(g: _Graph, node, opset: int) -> list[str]:
    red = _attr(node, "reduction", "none")
    return [] if red == "none" else [f"ScatterND reduction {red!r} unsupported (only 'none')"]


def _check_dropout(g: _Graph, node, opset: int) -> list[str]:
    name = _input(node, 2)
    if not name:
        return []
    value = g.constant(name)
    if value is None or bool(_first(value)):
        return ["Dropout `training_mode` must be a constant False"]
    return []


def _check_constant(g: _Graph, node, opset: int) -> list[str]:
    bad = [a.name for a in node.attribute if a.name in ("sparse_value", "value_string", "value_strings")]
    return [f"Constant attribute {bad[0]!r} unsupported"] if bad else []


def _check_lstm(g: _Graph, node, opset: int) -> list[str]:
    out = []
    if _attr(node, "input_forget", 0):
        out.append("LSTM input_forget must be 0")
    if _attr(node, "layout", 0):
        out.append("LSTM layout must be 0")
    return out


def _check_onehot(g: _Graph, node, opset: int) -> list[str]:
    msg = _need_const(g, node, 1, "`depth`")
    return [msg] if msg else []


_SQUEEZE_AXES = _check_axes_input(1)

RULES: dict[str, Callable] = {
    "GridSample": _check_gridsample,
    "Einsum": _check_einsum,
    "CumSum": _check_axes_input(1, "`axis`"),
    "Pad": _check_pad,
    "Squeeze": lambda g, n, o: _SQUEEZE_AXES(g, n, o) if o >= 13 else [],
    "Unsqueeze": lambda g, n, o: _SQUEEZE_AXES(g, n, o) if o >= 13 else [],
    "AveragePool": _check_pool,
    "MaxPool": _check_pool,
    "LpPool": _check_pool,
    "Resize": _check_resize,
    "TopK": _check_topk,
    "ScatterND": _check_scatter_nd,
    "Dropout": _check_dropout,
    "Constant": _check_constant,
    "LSTM": _check_lstm,
    "OneHot": _check_onehot,
}
# Reduce*: `axes` is an input from opset 18 (ReduceSum from 13), an attribute before.
for _op in (op for op, s in SUPPORTED.items() if s is _REDUCE):
    _since = 13 if _op == "ReduceSum" else 18
    RULES[_op] = (lambda since: lambda g, n, o: _check_axes_input(1)(g, n, o) if o >= since else [])(_since)

# Which tensor carries the op's element type: an input index, or ("out", i) for outputs.
_TYPE_SOURCE = {"Where": 1, "Constant": ("out", 0), "ConstantOfShape": ("out", 0), "RandomNormal": ("out", 0),
                "RandomUniform": ("out", 0), "Range": 0, "Shape": None, "Size": None, "If": None, "Loop": None,
                "Scan": None, "DequantizeLinear": 0, "QuantizeLinear": 0}  # fmt: skip


def _check_types(g: _Graph, node, support: OpSupport) -> list[Problem]:
    source = _TYPE_SOURCE.get(node.op_type, 0)
    if source is None:
        return []
    if isinstance(source, tuple):
        name = node.output[source[1]] if len(node.output) > source[1] else ""
    else:
        name = _input(node, source)
    dtype = g.dtype(name) if name else None
    names = [name]
    if node.op_type in ("Cast", "CastLike"):
        names.append(node.output[0])
    problems = []
    for n in names:
        dtype = g.dtype(n) if n else None
        if dtype is None or dtype in support.types:
            continue
        if dtype == "DOUBLE":
            problems.append(Problem(node.name, node.op_type, f"DOUBLE tensor '{n}' is cast down to FP32 by TensorRT", "warning"))
        else:
            problems.append(Problem(node.name, node.op_type, f"{dtype} tensor '{n}' unsupported (supported: "
                                    f"{', '.join(support.types)})"))  # fmt: skip
    return problems


# ------------------------------------------------------------------------------------------------ checker
def model_opset(model) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def check_model(model, infer_shapes: bool = True) -> list[Problem]:
    """Every node of `model` (subgraphs included) against the TensorRT 10.3 table; [] when it is clean.

    Args:
        model: an onnx.ModelProto (or a path to one).
        infer_shapes: run ONNX shape inference first (ranks and element types for the rank/type rules).
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    problems: list[Problem] = []
    opset = model_opset(model)
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        problems.append(Problem("<model>", "opset", f"opset {opset} outside TensorRT {TRT_VERSION}'s {lo}..{hi}"))
    if infer_shapes:
        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception as exc:  # noqa: BLE001 - inference is best effort; rank/type rules then skip
            problems.append(Problem("<model>", "shape_inference", f"ONNX shape inference failed: {exc}", "warning"))
    _check_graph(model.graph, _Graph(model.graph), opset, problems)
    return problems


def _check_graph(graph, g: _Graph, opset: int, problems: list[Problem]) -> None:
    for node in graph.node:
        name = node.name or (node.output[0] if node.output else "?")
        if node.domain not in ("", "ai.onnx"):
            problems.append(
                Problem(
                    name,
                    node.op_type,
                    f"custom-domain op '{node.domain}::{node.op_type}' needs a "
                    "TensorRT plugin (contrib ops such as com.microsoft Inverse are not built in)",
                )
            )
            continue
        if node.op_type in UNSUPPORTED:
            problems.append(Problem(name, node.op_type, f"{node.op_type} is {UNSUPPORTED[node.op_type]} by "
                                    f"TensorRT's ONNX parser (need {TRT_VERSION})"))  # fmt: skip
            continue
        support = SUPPORTED.get(node.op_type)
        if support is None:
            problems.append(Problem(name, node.op_type, f"{node.op_type} is not in TensorRT {TRT_VERSION}'s "
                                    "ONNX operator table"))  # fmt: skip
            continue
        rule = RULES.get(node.op_type)
        if rule is not None:
            problems.extend(Problem(name, node.op_type, msg) for msg in rule(g, node, opset))
        problems.extend(_check_types(g, node, support))
        for attr in node.attribute:  # If / Loop / Scan bodies
            if attr.g is not None and attr.g.node:
                _check_graph(attr.g, _Graph(attr.g, g), opset, problems)
            for sub in attr.graphs:
                _check_graph(sub, _Graph(sub, g), opset, problems)


def assert_tensorrt_compatible(model) -> list[Problem]:
    """Raise TensorRTCompatibilityError when check_model finds errors; return the warnings otherwise."""
    problems = check_model(model)
    if any(p.severity == "error" for p in problems):
        raise TensorRTCompatibilityError(problems)
    return problems
