"""A config file or a command line -> the settings model (`Config` of frozen `Watch`es).

This is the only module that sees raw configuration. Each watch key is read through its entry in
`schema.KEYS` (so a file, its `defaults:`, and a command-line flag are read by the same reader and
get the same message), then the rules that tie keys together run (`RULES`), and the model is
assembled from what was given: every default comes from the model's dataclasses.

Every error is a `ConfigError` pointing at ``file:line:column`` and the key path (or the flag),
and says what to write instead. PyYAML's silent "last duplicate key wins" is rejected, as are
unknown keys (with the closest valid key suggested).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from watchd.errors import ConfigError
from watchd.logtext import format_duration
from watchd.model import (
    CheckSettings,
    Config,
    PythonCheckSettings,
    RunSettings,
    Stop,
    Watch,
)
from watchd.reader import KIND_WORDS, Reader, list_item
from watchd.schema import (
    ACTION_KINDS,
    ALL_ACTIONS,
    DEFAULTS_KEYS,
    KEYS,
    OVERRIDE_KEYS,
    SETTINGS,
    SETTINGS_KEYS,
    WATCH_KEYS,
    Place,
    cli_flag,
    default,
    field_name,
    setting_flag,
)
from watchd.yamltree import Val, cli_value, compose, from_yaml

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1024 * 1024  # a config is a page of YAML; a 50 MB one took 6 min and 3.2 GB to parse
TOP_KEYS = frozenset({"defaults", "watches", *SETTINGS_KEYS})
_WATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


# --------------------------------------------------------------------------- one watch


@dataclass(frozen=True, slots=True)
class Given:
    """A key's value as read, with the `Val` it came from and how errors name it."""

    value: object
    v: Val
    where: str


@dataclass(slots=True)
class Draft:
    """One watch being built: where each key's value comes from, and the values read so far."""

    ctx: Reader
    name: str
    prefix: str
    wv: Val
    own: Mapping[str, Val]
    inherited: Mapping[str, Val]
    forced: Mapping[str, Val]
    kind: str = ""
    got: dict[str, Given] = dataclasses.field(default_factory=dict)

    def find(self, key: str) -> tuple[Val, str] | None:
        """The value that applies: a command-line override, the watch's own, then defaults:."""
        if key in self.forced:
            return self.forced[key], cli_flag(key)
        if key in self.own:
            return self.own[key], self.ctx.key(self.prefix, key)
        if key in self.inherited:
            return self.inherited[key], self.ctx.key("defaults", key)
        return None

    def fail(self, key: str, message: str) -> NoReturn:
        given = self.got[key]
        raise self.ctx.error(given.v, given.where, message)

    def value(self, key: str, fallback: object = None) -> object:
        given = self.got.get(key)
        return fallback if given is None else given.value


def either(words: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _action_kind(d: Draft) -> str:
    """A watch has exactly one action."""
    ctx = d.ctx
    kinds = [k for k in ACTION_KINDS if k in d.own]
    if len(kinds) > 1:
        both = " and ".join(ctx.option(k) for k in kinds)
        raise ctx.error(d.wv, d.prefix, f"both {both} given (a watch has exactly one action: remove one)")
    if not kinds:
        if ctx.cli:
            hint = (
                "give --pidfile FILE (or --process NAME) to signal a server, --command CMD to run a command, "
                "--run CMD (or -- PROGRAM ARGS) to run an app and restart it, or --post URL to send a request"
            )
        else:
            hint = (
                "add 'pidfile: FILE' (or 'process: NAME') to signal a server, 'command: CMD' to run a "
                "command, 'run: CMD' to run an app and restart it, or 'post: URL' to send a request"
            )
        raise ctx.error(d.wv, d.prefix, f"no action ({hint})")
    return kinds[0]


def _keys_fit_the_action(d: Draft) -> None:
    """A watch's own key that its action does not take is a mistake (defaults: may hold them)."""
    for key, v in d.own.items():
        applies = KEYS[key].actions
        if d.kind not in applies:
            need = either([d.ctx.option(k) for k in ACTION_KINDS if k in applies])
            raise d.ctx.key_error(
                v, d.ctx.key(d.prefix, key), f"only applies to watches with {need} (remove it)"
            )


def _read(d: Draft) -> None:
    """Read every key given that this watch's action takes, through the schema."""
    for key, spec in KEYS.items():
        if d.kind not in spec.actions:
            continue
        found = d.find(key)
        if found is None:
            continue
        value = spec.convert(d.ctx, *found)
        d.got[key] = Given(value, *found)
        if spec.positive and isinstance(value, float) and value <= 0:
            off = "give --no-confirm" if d.ctx.cli else "set confirm: false"
            d.fail(key, spec.positive.format(off=off))


# The rules that tie keys together, in the order they are checked.


def _paths_given(d: Draft) -> None:
    if d.find("paths") is None:
        raise d.ctx.error(d.wv, d.prefix, "no 'paths' (add paths: [DIR, ...] listing what to watch)")


def _patterns_are_not_file_paths(d: Draft) -> None:
    paths = d.value("paths", ())
    assert isinstance(paths, tuple)
    for key in ("patterns", "ignore"):
        given = d.got.get(key)
        if given is not None:
            assert isinstance(given.value, tuple)
            _warn_absolute_patterns(d.ctx, given.v, given.where, given.value, paths)


def _max_delay_not_below_debounce(d: Draft) -> None:
    debounce, max_delay = d.value("debounce", default("debounce")), d.value("max_delay", default("max_delay"))
    assert isinstance(debounce, float) and isinstance(max_delay, float)
    if max_delay < debounce:
        _timing_conflict(d, debounce=debounce, max_delay=max_delay)


def _cwd_exists(d: Draft) -> None:
    cwd = d.got.get("cwd")
    if cwd is not None and isinstance(cwd.value, Path) and not d.ctx.is_dir(cwd.value):
        # found now, not as an error at every change (the command, app or check runs there)
        d.fail("cwd", f"no directory {cwd.value} (create it, or correct the path)")


def _listen_keys_need_listen(d: Draft) -> None:
    if "listen_env" in d.got and "listen" not in d.got:
        d.fail("listen_env", f"needs {d.ctx.option('listen')} too (the socket it describes: add it)")
    if "ready_timeout" in d.got and "listen" not in d.got:
        d.fail(
            "ready_timeout",
            f"needs {d.ctx.option('listen')} too (without it the running app is stopped before the "
            "next one starts: add it, or remove ready_timeout)",
        )


def _check_timeout_needs_a_command_check(d: Draft) -> None:
    if "check_timeout" not in d.own:
        return
    v, where = d.own["check_timeout"], d.ctx.key(d.prefix, "check_timeout")
    check = d.got.get("check")
    if check is None:
        raise d.ctx.key_error(v, where, f"only applies to watches with {d.ctx.option('check')} (remove it)")
    if isinstance(check.value, PythonCheckSettings):
        raise d.ctx.key_error(v, where, "only applies to a command check, not to python (remove it)")


def _reload_keys_need_reload(d: Draft) -> None:
    """A run watch's restart_patterns and confirmation only mean something when it reloads."""
    if d.kind != "run" or "reload" in d.got:
        return
    for key in ("restart_patterns", "confirm", "confirm_timeout"):
        if key in d.own:
            v, where = d.own[key], d.ctx.key(d.prefix, key)
            raise d.ctx.key_error(
                v,
                where,
                f"only applies to a run watch with {d.ctx.option('reload')} (add it, or remove this)",
            )


RULES: tuple[Callable[[Draft], None], ...] = (
    _patterns_are_not_file_paths,
    _max_delay_not_below_debounce,
    _cwd_exists,
    _listen_keys_need_listen,
    _check_timeout_needs_a_command_check,
    _reload_keys_need_reload,
)


def _assemble(d: Draft) -> Watch:
    """The model from the values read; what was not given keeps the model's default."""

    def given(place: Place) -> dict[str, object]:
        return {field_name(k): g.value for k, g in d.got.items() if KEYS[k].place is place}

    settings = SETTINGS[d.kind]
    takes = {f.name for f in dataclasses.fields(settings)}
    action = {k: v for k, v in given(Place.ACTION).items() if k in takes}
    cwd = d.value("cwd", d.ctx.base_dir)
    if "cwd" in takes:
        action["cwd"] = cwd
    if "stop" in takes:
        action["stop"] = Stop(**given(Place.STOP))  # type: ignore[arg-type]
    check = d.value("check")
    if check is not None and not isinstance(check, PythonCheckSettings):
        check = CheckSettings(cwd=cwd, **given(Place.CHECK))  # type: ignore[arg-type]
    return Watch(
        name=d.name,
        action=settings(**action),
        check=check,
        **given(Place.WATCH),  # type: ignore[arg-type]
    )


def _build_watch(
    ctx: Reader,
    name: str,
    wv: Val,
    defaults: Val | None,
    prefix: str,
    *,
    overrides: Mapping[str, Val] | None = None,
) -> Watch:
    """One watch from its own keys, the file's `defaults:` and command-line `overrides`
    (which win over both: `watchd --config dev.yaml --debounce 1s`)."""
    assert isinstance(wv.value, dict)
    own: dict[str, Val] = wv.value
    kinds_given = [k for k in ACTION_KINDS if k in own]
    # the keys of this watch's action, when it has one: the others would be an error anyway
    shown = frozenset(k for k in WATCH_KEYS if kinds_given[0] in KEYS[k].actions) if kinds_given else None
    ctx.check_keys(wv, WATCH_KEYS, prefix, f"watch {name!r}", shown)
    inherited: dict[str, Val] = defaults.value if defaults is not None else {}  # type: ignore[assignment]
    d = Draft(ctx, name, prefix, wv, own, inherited, overrides or {})
    d.kind = _action_kind(d)
    _keys_fit_the_action(d)
    _paths_given(d)
    _read(d)
    for rule in RULES:
        rule(d)
    return _assemble(d)


def _warn_absolute_patterns(
    ctx: Reader, v: Val, key: str, patterns: Sequence[str], paths: Sequence[Path]
) -> None:
    """Warn about a pattern written as a file system path (`/home/me/app/src/*.py`): patterns are
    relative to each watched path, where a leading / anchors them, so it matches nothing."""
    for i, pattern in enumerate(patterns):
        bare = pattern.removeprefix("!")
        if not bare.startswith("/") or bare.count("/") < 2:
            continue
        first = "/" + bare.split("/")[1]
        if not ctx.is_dir(Path(first)) or any(ctx.is_dir(p / first[1:]) for p in paths):
            continue  # `/build/`: anchored to the watched path, as meant
        inside = [p for p in paths if bare.startswith(f"{p}/")]
        if inside:
            rel = bare[len(str(inside[0])) :]
            better = f"{pattern[: len(pattern) - len(bare)]}{rel}"
            fix = f"write {better!r}, which matches it under {inside[0]}"
        else:
            fix = "write it relative to the watched path, or watch its directory"
        log.warning(
            "%s",
            ctx.error(
                *list_item(ctx, v, key, i),
                f"{pattern!r} is a file system path, but patterns are relative to each watched path "
                f"(a leading / anchors one there), so it matches nothing: {fix}",
            ),
        )


def _timing_conflict(d: Draft, *, debounce: float, max_delay: float) -> NoReturn:
    """max_delay < debounce: point at what the user set last (a flag, the watch, defaults)."""
    ctx = d.ctx
    dd, md = format_duration(debounce), format_duration(max_delay)
    if "debounce" in d.forced or "max_delay" in d.forced:
        key = "max_delay" if "max_delay" in d.forced else "debounce"
        where = f" for watch {d.name!r}" if ctx.source != "watchd" else ""
        d.fail(key, f"max delay {md} is shorter than debounce {dd}{where} (raise --max-delay)")
    if "max_delay" in d.own or ("debounce" not in d.own and "max_delay" in d.inherited):
        d.fail("max_delay", f"max_delay {md} is shorter than debounce {dd} (make it {dd} or more)")
    which = "defaults.max_delay" if "max_delay" in d.inherited else "the default max_delay"
    setting = f"--max-delay {dd}" if ctx.cli else f"max_delay: {dd}"
    d.fail(
        "debounce", f"debounce {dd} is longer than {which} {md} (add {setting} or more, or shorten debounce)"
    )


def _check_defaults(ctx: Reader, defaults: Val) -> None:
    """Validate every default's value now, even one that applies to no watch of this file:
    `defaults: {signal: HUPP}` is a mistake whether or not a watch uses it yet."""
    assert isinstance(defaults.value, dict)
    for key, v in defaults.value.items():
        KEYS[key].convert(ctx, v, f"defaults.{key}")


# --------------------------------------------------------------------------- files and flags


def parse_config(
    text: str,
    *,
    source: str,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    is_dir: Callable[[Path], bool] = os.path.isdir,
) -> Config:
    """Parse YAML text. `source` names the file in errors; relative paths resolve from `base_dir`.

    `overrides` are command-line values (keys as in YAML, None for unset) that replace the
    matching key of every watch; only OVERRIDE_KEYS may be given. They are validated like the
    file's own values, and errors name the flag.
    """
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)

    ctx = Reader(source, base_dir, os.environ if env is None else env, is_dir=is_dir)
    node = compose(text, source)
    if node is None:
        raise ConfigError(
            "empty config (define watches: with at least one watch)", source=source, line=1, column=1
        )
    top = from_yaml(yaml.SafeLoader(""), node, source)
    if top.kind != "map":
        raise ctx.error(
            top, "", f"expected a mapping with a 'watches' key at the top level, got {KIND_WORDS[top.kind]}"
        )
    ctx.check_keys(top, TOP_KEYS, "", "the top level")
    assert isinstance(top.value, dict)
    forced = {k: cli_value(v) for k, v in (overrides or {}).items() if v is not None}
    assert forced.keys() <= OVERRIDE_KEYS, f"not overridable: {sorted(forced.keys() - OVERRIDE_KEYS)}"
    defaults = top.value.get("defaults")
    if defaults is not None:
        if defaults.kind == "null":
            defaults = None
        elif defaults.kind != "map":
            raise ctx.error(
                defaults, "defaults", f"expected a mapping of keys, got {KIND_WORDS[defaults.kind]}"
            )
        else:
            assert isinstance(defaults.value, dict)
            if "listen" in defaults.value:
                v = defaults.value["listen"]
                raise ctx.key_error(
                    v,
                    "defaults.listen",
                    "an address cannot be a default (give each run watch its own listen)",
                )
            for key in sorted(ALL_ACTIONS & defaults.value.keys()):
                v = defaults.value[key]
                raise ConfigError(
                    "an action cannot be a default (give each watch its own pidfile or command)",
                    source=source,
                    line=v.key_line,
                    column=v.key_column,
                    key=f"defaults.{key}",
                )
            ctx.check_keys(defaults, DEFAULTS_KEYS, "defaults", "defaults")
            _check_defaults(ctx, defaults)
    watches_v = top.value.get("watches")
    if watches_v is None:
        raise ctx.error(top, "", "no 'watches' (add watches: with at least one named watch)")
    if watches_v.kind == "null" or (watches_v.kind == "map" and not watches_v.value):
        raise ctx.error(watches_v, "watches", "empty (define at least one named watch under it)")
    if watches_v.kind != "map":
        raise ctx.error(
            watches_v, "watches", f"expected a mapping of named watches, got {KIND_WORDS[watches_v.kind]}"
        )
    assert isinstance(watches_v.value, dict)
    watches: list[Watch] = []
    for name, wv in watches_v.value.items():
        prefix = f"watches.{name}"
        if not _WATCH_NAME.match(name):
            raise ConfigError(
                f"bad watch name {name!r} (use letters, digits, '_', '-', '.' or '@')",
                source=source,
                line=wv.key_line,
                column=wv.key_column,
                key=prefix,
            )
        if wv.kind != "map":
            raise ctx.error(
                wv, prefix, f"expected a mapping of keys (paths, patterns, ...), got {KIND_WORDS[wv.kind]}"
            )
        watch = _build_watch(ctx, name, wv, defaults, prefix, overrides=forced)
        if isinstance(watch.action, RunSettings) and watch.action.listen is not None:
            address = watch.action.listen
            other = next(
                (
                    w
                    for w in watches
                    if isinstance(w.action, RunSettings)
                    and w.action.listen
                    and w.action.listen.describe() == address.describe()
                ),
                None,
            )
            if other is not None:
                assert isinstance(wv.value, dict)
                raise ctx.error(
                    wv.value["listen"],
                    f"{prefix}.listen",
                    f"{address.describe()} is watch {other.name!r}'s address too (give each app its own)",
                )
        watches.append(watch)
    for key in sorted(forced):
        if not any(w.action.kind in KEYS[key].actions for w in watches):
            need = either([k for k in ACTION_KINDS if k in KEYS[key].actions])
            raise ConfigError(
                f"applies to watches with {need}, and {source} has none (leave it out)",
                source="watchd",
                key=cli_flag(key),
            )
    settings = {
        key: spec.convert(ctx, top.value[key], key) for key, spec in SETTINGS_KEYS.items() if key in top.value
    }
    return Config(watches=tuple(watches), **settings)  # type: ignore[arg-type]


def with_settings(config: Config, options: Mapping[str, object]) -> Config:
    """`config` with watchd's own settings given on the command line (keys as in YAML, None for
    unset): read as the file's are, errors naming the flag; a flag wins over the file."""
    ctx = Reader("watchd", Path.cwd(), os.environ, lambda prefix, key: setting_flag(key))
    given = {
        key: SETTINGS_KEYS[key].convert(ctx, cli_value(value), setting_flag(key))
        for key, value in options.items()
        if value is not None
    }
    return dataclasses.replace(config, **given)  # type: ignore[arg-type]


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Read and parse a config file; relative paths in it resolve from its directory."""
    shown = os.fspath(path)
    try:
        st = os.stat(path)  # before opening: a FIFO would block, /dev/zero never end
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(
                "is not a regular file (a FIFO, device or socket): pass a .yaml file", source=shown
            )
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"is {st.st_size:,} bytes: a config is at most {MAX_CONFIG_BYTES:,} "
                "(is this the right file?)",
                source=shown,
            )
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"is larger than {MAX_CONFIG_BYTES:,} bytes (is this the right file?)", source=shown
            )
    except FileNotFoundError:
        raise ConfigError("config file not found (check the path given to --config)", source=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file (pass a .yaml file)", source=shown) from None
    except PermissionError:
        raise ConfigError(
            "permission denied reading the config (check its mode and owner)", source=shown
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text at byte {exc.start} (save the file as UTF-8)", source=shown
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror}", source=shown) from None
    absolute = Path(os.path.abspath(path))
    cfg = parse_config(text, source=shown, base_dir=absolute.parent, env=env, overrides=overrides)
    return dataclasses.replace(cfg, source=absolute)


def _cli_key_name(prefix: str, key: str) -> str:
    return cli_flag(key)


def config_from_options(
    options: Mapping[str, object],
    *,
    name: str = "cli",
    base_dir: Path | None = None,
    is_dir: Callable[[Path], bool] = os.path.isdir,
) -> Config:
    """Build a one-watch config from command-line values (keys as in YAML; unset ones left out).

    The same validators as the YAML path run, so both report the same problems; errors name
    the command-line flag instead of a file position.
    """
    ctx = Reader("watchd", base_dir or Path.cwd(), os.environ, _cli_key_name, is_dir)
    wv = Val({k: cli_value(v) for k, v in options.items() if v is not None}, "map")
    return Config(watches=(_build_watch(ctx, name, wv, None, ""),))
