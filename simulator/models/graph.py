"""Any classification network as a BlockNet: separation points found by tracing (torch.fx).

Candidate blocks are the model's named children, one level into sequential stacks
(`nn.Sequential`, `nn.ModuleList`: `features.7`, `layer3.1`), and one level into a top-level
child that itself holds such a stack (a ViT's `encoder` gives `encoder.layers.encoder_layer_5`).
The model is traced with those blocks as leaves; a block's output is a separation point when
it is called once and is the only value computed before it that is used after it (parameters
read with `get_attr` are not values: each part reads its own). The graph is then cut at every
point into parts, each a `GraphModule` sharing the original modules, named by the point it
ends at; the last part, up to the output, is named by the last block it calls (else `output`).
Chained, the parts run exactly the operations of the traced model, in the same order.

Tensors at a point may be feature maps (C, H, W), token sequences (N, D) or vectors (F); the
early exit has a head for each (`early_exit`). A point whose value is not a tensor of one of
those ranks is not a candidate.

A model that cannot be traced (data-dependent control flow, say) raises a UserError naming it;
`points` (the scenario's `workload.models[].points`) declares the points by hand, as module
paths, and is checked by the same rule.
"""
from collections.abc import Sequence

import torch
from torch import fx, nn

from ..core.errors import UserError

CONTAINERS = (nn.Sequential, nn.ModuleList)
MAP_RANKS = (2, 3, 4)  # (B, F), (B, N, D), (B, C, H, W)


def candidate_blocks(model: nn.Module) -> list[str]:
    """Dotted paths of the modules that may end a part (module docstring), in definition order."""
    paths: list[str] = []

    def visit(module: nn.Module, prefix: str, top: bool) -> None:
        for name, child in module.named_children():
            path = prefix + name
            if isinstance(child, CONTAINERS):
                paths.extend(f"{path}.{inner}" for inner, _ in child.named_children())
            elif top and any(isinstance(grand, CONTAINERS) for grand in child.children()):
                visit(child, path + ".", False)
            else:
                paths.append(path)

    visit(model, "", True)
    return paths


class BlockTracer(fx.Tracer):
    """symbolic_trace that keeps the given module paths whole (one call_module node each)."""

    def __init__(self, leaves: Sequence[str]):
        super().__init__()
        self.leaves = set(leaves)

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return qualified_name in self.leaves or super().is_leaf_module(module, qualified_name)


def trace(model: nn.Module, leaves: Sequence[str], arch: str, declared: bool = False) -> fx.GraphModule:
    try:
        graph = BlockTracer(leaves).trace(model)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, AttributeError... on dynamic code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if declared:
            hint = ("with the declared points traced whole; the code torch.fx stops at is outside them (in the "
                    "model's own forward): declare points that enclose it, or make that forward static")
        else:
            hint = ("declare its separation points by hand: workload.models[].points (--points), a list of module "
                    "paths in execution order, traced whole (README, \"Any model\")")
        raise UserError(f"model {arch}: torch.fx cannot trace it ({type(exc).__name__}: {first[:160]}); {hint}") from None
    return fx.GraphModule(model, graph)


class ShapeRecorder(fx.Interpreter):
    """Runs the graph and records each node's output shape (`node.meta['shape']`; None for a
    non-tensor). torch's ShapeProp does the same but prints a traceback on any error."""

    def run_node(self, node: fx.Node):
        result = super().run_node(node)
        node.meta["shape"] = tuple(result.shape) if isinstance(result, torch.Tensor) else None
        return result


def propagate_shapes(module: fx.GraphModule, input_shape: tuple[int, ...], arch: str) -> None:
    """Record every node's output shape on a 2-sample zero batch, in eval mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ShapeRecorder(module).run(torch.zeros(2, *input_shape))
    except Exception as exc:  # noqa: BLE001 - whatever the model raises on this input is the user's error to read
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"model {arch}: a {'x'.join(map(str, input_shape))} input does not run through it "
                        f"({type(exc).__name__}{': ' + cause[:160] if cause else ''}); check input_size and the "
                        f"dataset's channels") from None
    finally:
        module.train(was_training)


def is_value(node: fx.Node) -> bool:
    """Nodes whose result crosses a cut if used beyond it (parameters and buffers do not: each part reads them)."""
    return node.op not in ("get_attr", "output")


def cut_points(module: fx.GraphModule, blocks: Sequence[str]) -> list[fx.Node]:
    """The call_module nodes of `blocks` after which exactly their own output crosses, in execution order."""
    nodes = list(module.graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    last_use = {node: max((index[user] for user in node.users), default=index[node]) for node in nodes}
    calls: dict[str, list[fx.Node]] = {}
    for node in nodes:
        if node.op == "call_module" and node.target in blocks:
            calls.setdefault(node.target, []).append(node)
    output_index = index[next(n for n in nodes if n.op == "output")]
    points = []
    for found in calls.values():
        if len(found) != 1:
            continue
        node = found[0]
        i = index[node]
        crossing = [n for n in nodes[:i + 1] if is_value(n) and last_use[n] > i]
        shape = node.meta.get("shape")
        if crossing == [node] and last_use[node] < output_index and shape is not None and len(shape) in MAP_RANKS:
            points.append(node)
    return sorted(points, key=index.__getitem__)


def part(module: fx.GraphModule, nodes: Sequence[fx.Node], source: fx.Node, end: fx.Node | None) -> fx.GraphModule:
    """The nodes as a GraphModule of one input (`source`'s value) returning `end`'s value (None: the model's output)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {source: graph.placeholder("x")}

    def arg(node: fx.Node) -> fx.Node:
        if node not in env:  # a parameter or buffer read in an earlier part: read it here too
            assert node.op == "get_attr", f"{node} crosses the cut"  # cut_points admits no other crossing
            env[node] = graph.node_copy(node, arg)
        return env[node]

    for node in nodes:
        if node.op == "output":
            graph.node_copy(node, arg)
        elif node.op != "placeholder":
            env[node] = graph.node_copy(node, arg)
    if end is not None:
        graph.output(env[end])
    graph.lint()
    return fx.GraphModule(module, graph)


def partition(module: fx.GraphModule, points: Sequence[fx.Node]) -> dict[str, fx.GraphModule]:
    """The parts between consecutive points, each named by the point it ends at (module docstring)."""
    nodes = list(module.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    source = placeholders[0]
    parts: dict[str, fx.GraphModule] = {}
    start = 0
    for point in points:
        stop = nodes.index(point) + 1
        parts[str(point.target)] = part(module, nodes[start:stop], source, point)
        source, start = point, stop
    rest = nodes[start:]
    called = [str(n.target) for n in rest if n.op == "call_module"]
    parts[called[-1] if called else "output"] = part(module, rest, source, None)
    return parts


def no_inplace(model: nn.Module) -> None:
    """Turn off in-place activations (`inplace=True`), so that any block can start a part whose input
    is a leaf tensor (a received feature batch); the results are the same."""
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False


def repeat_input(module: fx.GraphModule, channels: int) -> None:
    """Feed the model its input expanded to `channels` channels (a grey image as RGB): x.expand(-1, C, -1, -1)."""
    graph = module.graph
    source = next(n for n in graph.nodes if n.op == "placeholder")
    with graph.inserting_after(source):
        expanded = graph.call_method("expand", (source, -1, channels, -1, -1))
    source.replace_all_uses_with(expanded, delete_user_cb=lambda user: user is not expanded)
    module.recompile()


def traced_parts(model: nn.Module, input_shape: tuple[int, ...], arch: str, points: Sequence[str] | None = None,
                 repeat_to: int | None = None) -> tuple[dict[str, fx.GraphModule], list[str]]:
    """(parts by name, the separation points) of `model` for samples of `input_shape`.

    `points`, when given, are the separation points declared by hand: each must be a module
    path the rule accepts (module docstring); they are traced as leaves. `repeat_to`: the
    model takes that many channels, and the input's one channel is repeated (`repeat_input`).
    """
    no_inplace(model)
    blocks = list(points) if points else candidate_blocks(model)
    module = trace(model, blocks, arch, declared=bool(points))
    if repeat_to is not None:
        repeat_input(module, repeat_to)
    propagate_shapes(module, input_shape, arch)
    found = cut_points(module, blocks)
    if points:
        valid = [str(node.target) for node in found]
        for name in points:
            if name not in valid:
                raise UserError(f"model {arch}: {name!r} cannot be a separation point (not a module called once whose "
                                f"output alone crosses to the rest as a 2-4 dimensional tensor); valid among the "
                                f"declared: {', '.join(valid) or 'none'}")
        if valid != list(points):
            raise UserError(f"model {arch}: list the declared points in execution order: {', '.join(valid)}")
    if not found:
        raise UserError(f"model {arch}: no separation point found (no top-level block whose output alone crosses "
                        f"to the rest); declare them: workload.models[].points (README, \"Any model\")")
    parts = partition(module, found)
    return parts, [str(node.target) for node in found]
