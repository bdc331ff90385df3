"""`load_recipe`: read, override and validate a recipe file in one pass."""

from __future__ import annotations

import copy
import dataclasses
import numbers
import pathlib
import re

from tfadmm import constraints
from tfadmm.allocation import METHODS as ALLOCATION_METHODS
from tfadmm.data import SOURCES as DATA_SOURCES
from tfadmm.errors import RecipeError
from tfadmm.recipes import schema
from tfadmm.recipes.pruning_order import check_sparsity_grows
from tfadmm.recipes.reader import ANY_KEY, Reader
from tfadmm.recipes.yaml_source import YamlSyntaxError, parse_yaml


def _fields(spec):
    """A section's keys: the fields of the settings object it becomes, in their order."""
    return tuple(field.name for field in dataclasses.fields(spec))


VERSION = 1
TOP_KEYS = ("version", "name", "seed", "model", "data", "baseline", "defaults", "stages",
            "distribute", "precision", "jit_compile")
MODEL_KEYS = _fields(schema.ModelSpec)
DATA_KEYS = _fields(schema.DataSpec)
OPTIMIZER_KEYS = _fields(schema.OptimizerSpec)
ADMM_KEYS = _fields(schema.ADMMSpec)
RETRAIN_KEYS = _fields(schema.RetrainSpec)
DISTILL_KEYS = _fields(schema.DistillSpec)
BASELINE_KEYS = _fields(schema.TrainSpec)
DEFAULTS_KEYS = ("admm", "retrain", "optimizer", "keep_previous", "distill")
STAGE_KEYS = ("name", "targets", "allocate", "admm", "retrain", "optimizer", "keep_previous",
              "distill")
ALLOCATE_KEYS = _fields(schema.AllocateSpec)
TARGET_KEYS = ("sparsity", "n_m", "filters", "channels", "binary", "ternary", "bits",
               "power_of_two", "per_channel")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _merged(reader, sources, keys):
    """Merges optional sub-sections key by key; later sources win.

    Returns `{key: (value, path)}` so errors point at the line that set it.
    """
    merged = {}
    for value, path in sources:
        section = reader.mapping(value, path, keys)
        for key, item in (section or {}).items():
            merged[key] = (item, path + (key,))
    return merged


def _optimizer(reader, sources, base=None):
    """An `OptimizerSpec`: `base` (the phase's default) with the sources' keys over it."""
    base = base or schema.OptimizerSpec()
    raw = _merged(reader, sources, OPTIMIZER_KEYS)
    kwargs = {}
    if "name" in raw:
        kwargs["name"] = reader.string(raw["name"][0], raw["name"][1], choices=schema.OPTIMIZERS)
    if "learning_rate" in raw:
        kwargs["learning_rate"] = reader.number(*raw["learning_rate"], low=0, low_open=True)
    for key in ("momentum", "weight_decay"):
        if key in raw:
            kwargs[key] = reader.number(*raw[key], low=0, none_ok=True)
    if "schedule" in raw:
        kwargs["schedule"] = reader.string(*raw["schedule"], choices=schema.SCHEDULES)
    if "decay_epochs" in raw:
        kwargs["decay_epochs"] = reader.number(*raw["decay_epochs"], low=1, integer=True)
    if "decay_rate" in raw:
        kwargs["decay_rate"] = reader.number(*raw["decay_rate"], low=0, high=1, low_open=True)
    name = kwargs.get("name", base.name)
    if name in schema.OPTIMIZERS and kwargs.get("momentum") is not None and name not in (
        "sgd", "rmsprop"
    ):
        reader.fail(raw["momentum"][1], f"no momentum for optimizer '{name}' (sgd, rmsprop)",
                    raw["momentum"][0])
    return dataclasses.replace(base, **kwargs)


def _constraint(reader, value, path):
    """A target spec (`{sparsity: 0.9, bits: 4}`, or a bare sparsity) -> Constraint."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = {"sparsity": value}
    spec = reader.mapping(value, path, TARGET_KEYS, required=True)
    if spec is None:
        return None
    errors_before = len(reader.errors)
    pruning, quantizer = None, None
    per_channel = False
    if "per_channel" in spec:
        per_channel = bool(reader.boolean(spec["per_channel"], path + ("per_channel",)))
    if "sparsity" in spec:
        s = reader.number(spec["sparsity"], path + ("sparsity",), low=0, high=1, high_open=True)
        pruning = None if s is None else reader.build(path + ("sparsity",),
                                                      constraints.Sparsity, s)
    if "n_m" in spec:
        nm = spec["n_m"]
        ok = (isinstance(nm, list) and len(nm) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in nm)
              and 1 <= nm[0] < nm[1])
        if not ok:
            reader.fail(path + ("n_m",), "a pair [n, m] of integers with 1 <= n < m", nm)
        elif pruning is not None:
            reader.fail(path + ("n_m",), "either sparsity or n_m, not both", nm)
        else:
            pruning = reader.build(path + ("n_m",), constraints.NMSparsity, nm[0], nm[1])
    pruning = _structured(reader, spec, path, pruning)
    chosen = [k for k in ("binary", "ternary", "bits", "power_of_two") if k in spec]
    if len(chosen) > 1:
        reader.fail(path, "at most one of binary, ternary, bits, power_of_two", sorted(chosen))
    elif chosen:
        key = chosen[0]
        item, item_path = spec[key], path + (key,)
        if key in ("binary", "ternary"):
            if item is not True:
                reader.fail(item_path, "true", item)
            else:
                cls = constraints.Binary if key == "binary" else constraints.Ternary
                quantizer = reader.build(item_path, cls, per_channel=per_channel)
        else:
            cls = constraints.Quantize if key == "bits" else constraints.PowerOfTwo
            low, high = cls.BITS
            bits = reader.number(item, item_path, low=low, high=high, integer=True)
            if bits is not None:
                quantizer = reader.build(item_path, cls, bits, per_channel=per_channel)
    if "per_channel" in spec and quantizer is None and not chosen:
        reader.fail(path + ("per_channel",), "per_channel only with a quantizer", True)
    if pruning is None and quantizer is None:
        if len(reader.errors) == errors_before:
            reader.fail(path, "a sparsity, n_m, filters, channels, binary, ternary, bits or "
                        "power_of_two target",
                        value)
        return None
    if pruning is not None and quantizer is not None:
        return pruning & quantizer
    return pruning or quantizer


def _structured(reader, spec, path, pruning):
    """`filters: s` / `channels: s`: whole filters or input channels pruned (one pruning key)."""
    for key, cls in (("filters", constraints.FilterSparsity),
                     ("channels", constraints.ChannelSparsity)):
        if key not in spec:
            continue
        others = [k for k in ("sparsity", "n_m", "filters", "channels") if k in spec and k != key]
        s = reader.number(spec[key], path + (key,), low=0, high=1, high_open=True)
        if s is None:
            continue
        if others:
            if key == "filters" or "filters" not in others:
                reader.fail(path + (key,), "one of sparsity, n_m, filters, channels, not "
                            f"{' and '.join(sorted([key, *others]))}", spec[key])
            continue
        pruning = reader.build(path + (key,), cls, s)
    return pruning


def _targets(reader, value, path):
    section = reader.mapping(value, path, keys=ANY_KEY, required=True)
    if section is None:
        return ()
    if not section:
        reader.fail(path, "at least one layer pattern", value)
    pairs = []
    for pattern, spec in section.items():
        if not isinstance(pattern, str) or not pattern:
            reader.fail(path + (pattern,), "a layer-name pattern (string)", pattern)
            continue
        constraint = _constraint(reader, spec, path + (pattern,))
        if constraint is not None:
            pairs.append((pattern, constraint))
    return tuple(pairs)


def _check_rho_final(reader, admm_raw, admm):
    """`rho_final` replaces `rho_multiplier` (one or the other) and is not below `rho`."""
    if admm.rho_final is None or "rho_final" not in admm_raw:
        return
    _, path = admm_raw["rho_final"]
    if "rho_multiplier" in admm_raw:
        reader.fail(path, "rho_final or rho_multiplier, not both (rho_final sets the growth)",
                    admm_raw["rho_multiplier"][0])
    elif isinstance(admm.rho, (int, float)) and admm.rho_final < admm.rho:
        reader.fail(path, f"a number >= rho ({admm.rho:g})", admm.rho_final)


def _read_stage(reader, raw, index, defaults, names):
    path = ("stages", index)
    section = reader.mapping(raw, path, STAGE_KEYS, required=True)
    if section is None:
        return None
    name = reader.string(section.get("name"), path + ("name",), pattern=_NAME,
                         what="a name of letters, digits, '_', '.' or '-'")
    if name is not None:
        if name in names:
            reader.fail(path + ("name",), "a stage name not used before", name)
        names.add(name)
    given = [key for key in ("targets", "allocate") if section.get(key) is not None]
    targets, allocate = (), None
    if len(given) != 1:
        reader.fail(path, "exactly one of targets, allocate", given)
    elif given == ["targets"]:
        targets = _targets(reader, section.get("targets"), path + ("targets",))
    else:
        allocate = _allocate(reader, section["allocate"], path + ("allocate",))

    d = defaults or {}
    admm_raw = _merged(reader, [(d.get("admm"), ("defaults", "admm")),
                                (section.get("admm"), path + ("admm",))], ADMM_KEYS)
    retrain_raw = _merged(reader, [(d.get("retrain"), ("defaults", "retrain")),
                                   (section.get("retrain"), path + ("retrain",))], RETRAIN_KEYS)

    def opt(phase, base):
        return _optimizer(reader, [
            (d.get("optimizer"), ("defaults", "optimizer")),
            ((d.get(phase) or {}).get("optimizer") if isinstance(d.get(phase), dict) else None,
             ("defaults", phase, "optimizer")),
            (section.get("optimizer"), path + ("optimizer",)),
            ((section.get(phase) or {}).get("optimizer")
             if isinstance(section.get(phase), dict) else None, path + (phase, "optimizer")),
        ], base)

    def get(raw, key, default, **kw):
        if key not in raw:
            return default
        return reader.number(*raw[key], **kw)

    admm_default, retrain_default = schema.ADMMSpec(), schema.RetrainSpec()
    admm = schema.ADMMSpec(
        epochs=get(admm_raw, "epochs", admm_default.epochs, low=0, integer=True),
        update_every_steps=get(admm_raw, "update_every_steps", admm_default.update_every_steps,
                               low=1, integer=True, none_ok=True),
        updates_per_epoch=get(admm_raw, "updates_per_epoch", admm_default.updates_per_epoch,
                              low=1, integer=True),
        rho=get(admm_raw, "rho", admm_default.rho, low=0, low_open=True),
        rho_multiplier=get(admm_raw, "rho_multiplier", admm_default.rho_multiplier, low=1),
        rho_max=get(admm_raw, "rho_max", admm_default.rho_max, low=0, low_open=True,
                    none_ok=True),
        rho_final=get(admm_raw, "rho_final", admm_default.rho_final, low=0, low_open=True,
                      none_ok=True),
        optimizer=opt("admm", admm_default.optimizer),
    )
    _check_rho_final(reader, admm_raw, admm)
    keep_best = retrain_default.keep_best
    if "keep_best" in retrain_raw:
        keep_best = bool(reader.boolean(*retrain_raw["keep_best"]))
    recalibrate_bn = retrain_default.recalibrate_bn
    if "recalibrate_bn" in retrain_raw:
        recalibrate_bn = bool(reader.boolean(*retrain_raw["recalibrate_bn"]))
    retrain = schema.RetrainSpec(
        epochs=get(retrain_raw, "epochs", retrain_default.epochs, low=0, integer=True),
        progressive_fraction=get(retrain_raw, "progressive_fraction",
                                 retrain_default.progressive_fraction, low=0, high=1,
                                 low_open=True, none_ok=True),
        optimizer=opt("retrain", retrain_default.optimizer),
        keep_best=keep_best,
        recalibrate_bn=recalibrate_bn,
    )
    distill = _distill(reader, [(d.get("distill"), ("defaults", "distill")),
                                (section.get("distill"), path + ("distill",))])
    keep = section.get("keep_previous", d.get("keep_previous", True))
    keep_path = path + ("keep_previous",) if "keep_previous" in section else (
        "defaults", "keep_previous")
    keep = reader.boolean(keep, keep_path)
    return schema.Stage(name=name or f"stage{index}", targets=targets, admm=admm,
                        retrain=retrain, keep_previous=bool(keep), distill=distill,
                        allocate=allocate)


def _allocate(reader, value, path):
    """`allocate: {rate, method, layers}` -> `AllocateSpec` (arguments of `tfadmm.allocate`)."""
    section = reader.mapping(value, path, ALLOCATE_KEYS, required=True)
    if section is None:
        return None
    rate = reader.number(section.get("rate"), path + ("rate",), low=1, low_open=True)
    method = reader.string(section.get("method", schema.AllocateSpec.method), path + ("method",),
                           choices=ALLOCATION_METHODS)
    layers = section.get("layers")
    if layers is not None and (not isinstance(layers, list) or not layers or not all(
            isinstance(p, str) and p for p in layers)):
        reader.fail(path + ("layers",), "a non-empty list of layer-name patterns", layers)
        layers = None
    if rate is None or method is None:
        return None
    return schema.AllocateSpec(rate=rate, method=method,
                               layers=None if layers is None else tuple(layers))


def _distill(reader, sources):
    """`distill:` (defaults, then the stage): a mapping, `true` for the defaults,
    `false` for none, or `auto` (also when neither says anything: `schema.Stage`)."""
    on, mappings = schema.AUTO, []
    for value, path in sources:
        if value is None:
            continue
        if isinstance(value, bool):
            on, mappings = value, [] if not value else mappings
        elif value == schema.AUTO:
            on, mappings = schema.AUTO, []
        elif isinstance(value, dict):
            on = True
            mappings.append((value, path))
        else:
            reader.fail(path, "a mapping (temperature, alpha, teacher), true, false or auto",
                        value)
    if on == schema.AUTO:
        return schema.AUTO
    if not on:
        return None
    raw = _merged(reader, mappings, DISTILL_KEYS)
    default, kwargs = schema.DistillSpec(), {}
    if "temperature" in raw:
        kwargs["temperature"] = reader.number(*raw["temperature"], low=0, low_open=True)
    if "alpha" in raw:
        kwargs["alpha"] = reader.number(*raw["alpha"], low=0, high=1)
    if "teacher" in raw:
        kwargs["teacher"] = reader.string(*raw["teacher"], choices=schema.TEACHERS)
    return dataclasses.replace(default, **{k: v for k, v in kwargs.items() if v is not None})


def _check_allocation_data(reader, stages, data):
    """`method: sensitivity` measures on the validation split: there must be one."""
    for index, stage in enumerate(stages):
        if stage.allocate is not None and stage.allocate.method == "sensitivity" and (
                not data.validation_split):
            reader.fail(("stages", index, "allocate", "method"),
                        "uniform or global when data.validation_split is 0 (sensitivity "
                        "measures on the validation split)", "sensitivity")


def apply_overrides(document, overrides):
    """Applies `--set` overrides (`stages.1.admm.epochs=3`) to a parsed document.

    Keys are dotted; a list index is a number or, for `stages`, a stage name.
    Values are read as YAML (`3`, `1e-3`, `null`, `[2, 4]`).

    Raises:
        RecipeError: an override that is not `key=value` or names no such place.
    """
    document = copy.deepcopy(document)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set: expected KEY=VALUE. Received: {override!r}")
        try:
            value = parse_yaml(f"v: {text}")[0]["v"] if text else None
        except YamlSyntaxError:
            value = text
        parts = key.split(".")
        node = document
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                index = _list_index(node, part)
                if index is None:
                    raise RecipeError(
                        f"--set {key}: expected a list index 0..{len(node) - 1}"
                        f"{' or a stage name' if parts[0] == 'stages' else ''} at "
                        f"'{'.'.join(parts[:depth + 1])}'. Received: {part!r}"
                    )
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
                    if node is None:
                        node = {}
            else:
                raise RecipeError(
                    f"--set {key}: expected a mapping or list at "
                    f"'{'.'.join(parts[:depth])}'. Received: {node!r}"
                )
    return document


def _list_index(node, part):
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for index, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return index
    return None


def load_recipe(path, overrides=()):
    """Reads and validates a recipe file.

    Args:
        path: the YAML file.
        overrides: `KEY=VALUE` strings applied before validation, as
            `tfadmm run --set` does.

    Returns:
        A `Recipe`.

    Raises:
        RecipeError: listing every problem, one per line, each with the file,
            line, path inside the document and received value.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: cannot read the recipe: {error}") from None
    return parse_recipe(text, str(path), overrides)


def parse_recipe(text, filename="<recipe>", overrides=()):
    """`load_recipe` for a string already read."""
    try:
        document, lines = parse_yaml(text, filename)
    except YamlSyntaxError as error:
        raise RecipeError(str(error)) from None
    if overrides:
        if not isinstance(document, dict):
            raise RecipeError(f"{filename}: expected a mapping at the top. Received: {document!r}")
        document = apply_overrides(document, overrides)
    reader = Reader(filename, lines)
    top = reader.mapping(document, (), TOP_KEYS, required=True)
    if top is None:
        raise RecipeError("\n".join(reader.errors))

    if top.get("version") != VERSION:
        reader.fail(("version",), f"{VERSION}", top.get("version"))
    name = reader.string(top.get("name", pathlib.Path(filename).stem), ("name",), pattern=_NAME,
                         what="a name of letters, digits, '_', '.' or '-'")
    seed = reader.number(top.get("seed", 0), ("seed",), low=0, integer=True)

    model_raw = reader.mapping(top.get("model"), ("model",), MODEL_KEYS, required=True) or {}
    sources = [k for k in ("zoo", "file", "function") if model_raw.get(k) is not None]
    if isinstance(top.get("model"), dict) and len(sources) != 1:
        reader.fail(("model",), "exactly one of zoo, file, function", sorted(sources))
    for key in sources:
        reader.string(model_raw[key], ("model", key))
    if "function" in sources and ":" not in str(model_raw["function"]):
        reader.fail(("model", "function"), "a 'package.module:function' reference",
                    model_raw["function"])
    args = model_raw.get("args", {})
    if not isinstance(args, dict):
        reader.fail(("model", "args"), "a mapping", args)
        args = {}
    safe_mode = reader.boolean(model_raw.get("safe_mode", schema.ModelSpec.safe_mode),
                               ("model", "safe_mode"))
    model = schema.ModelSpec(
        zoo=model_raw.get("zoo"), file=model_raw.get("file"), function=model_raw.get("function"),
        args=args, safe_mode=bool(safe_mode),
    )

    data_raw = reader.mapping(top.get("data"), ("data",), DATA_KEYS, required=True) or {}
    data_default = schema.DataSpec()
    data = schema.DataSpec(
        name=reader.string(data_raw.get("name"), ("data", "name")) or "",
        source=reader.string(data_raw.get("source", data_default.source), ("data", "source"),
                             choices=DATA_SOURCES) or data_default.source,
        path=data_raw.get("path"),
        batch_size=reader.number(data_raw.get("batch_size", data_default.batch_size),
                                 ("data", "batch_size"), low=1, integer=True)
        or data_default.batch_size,
        validation_split=reader.number(data_raw.get("validation_split",
                                                    data_default.validation_split),
                                       ("data", "validation_split"), low=0, high=1,
                                       high_open=True) or 0.0,
        take=reader.number(data_raw.get("take"), ("data", "take"), low=1, integer=True,
                           none_ok=True),
        augment=bool(reader.boolean(data_raw.get("augment", data_default.augment),
                                    ("data", "augment"))),
        normalize=bool(reader.boolean(data_raw.get("normalize", data_default.normalize),
                                      ("data", "normalize"))),
    )
    if data.path is not None and not isinstance(data.path, str):
        reader.fail(("data", "path"), "a path (string)", data.path)

    baseline = None
    if top.get("baseline") is not None:
        base_raw = reader.mapping(top["baseline"], ("baseline",), BASELINE_KEYS) or {}
        defaults_raw = top.get("defaults") if isinstance(top.get("defaults"), dict) else {}
        baseline = schema.TrainSpec(
            epochs=reader.number(base_raw.get("epochs"), ("baseline", "epochs"), low=0,
                                 integer=True) or 0,
            optimizer=_optimizer(reader, [(defaults_raw.get("optimizer"),
                                           ("defaults", "optimizer")),
                                          (base_raw.get("optimizer"),
                                           ("baseline", "optimizer"))]),
        )

    defaults = reader.mapping(top.get("defaults"), ("defaults",), DEFAULTS_KEYS)
    stages_raw = top.get("stages")
    stages = []
    if not isinstance(stages_raw, list) or not stages_raw:
        reader.fail(("stages",), "a non-empty list of stages", stages_raw)
    else:
        names = set()
        for index, raw in enumerate(stages_raw):
            stage = _read_stage(reader, raw, index, defaults, names)
            if stage is not None:
                stages.append(stage)
        check_sparsity_grows(reader, [
            (stage.name, [(pattern, ("stages", index, "targets", pattern, "sparsity"),
                           constraint, "") for pattern, constraint in stage.targets])
            for index, stage in enumerate(stages)])
        _check_allocation_data(reader, stages, data)

    distribute, precision, jit_compile = _execution(reader, top)

    if reader.errors:
        # Defaults are merged into every stage: report each problem once, in file order.
        raise RecipeError("\n".join(sorted(dict.fromkeys(reader.errors), key=reader.line_of)))
    return schema.Recipe(
        name=name, model=model, data=data, stages=tuple(stages), baseline=baseline, seed=seed,
        version=VERSION, source=filename, document=document, lines=lines,
        distribute=distribute, precision=precision, jit_compile=jit_compile,
    )


def _execution(reader, top):
    """`distribute`, `precision` and `jit_compile`: where and how the run computes."""
    distribute = reader.string(top.get("distribute", "none"), ("distribute",),
                               choices=schema.DISTRIBUTE) or "none"
    precision = reader.string(top.get("precision", "float32"), ("precision",),
                              choices=schema.PRECISIONS) or "float32"
    jit_compile = top.get("jit_compile", "auto")
    if jit_compile != "auto" and not isinstance(jit_compile, bool):
        reader.fail(("jit_compile",), "true, false or auto", jit_compile)
        jit_compile = "auto"
    if jit_compile is True and distribute != "none":
        reader.fail(("jit_compile",), f"auto or false with distribute: {distribute} (XLA "
                    "compiles a single device's step)", jit_compile)
    return distribute, precision, jit_compile
