"""The homework's 2-D GRU cell explorer (`plot_gru_2d_step`), as a pure function.

The cell is `charlm.models.GRUCell(2, 2)` with every weight zero except the notebook's:

    reset   W_xr[0, 1] = W_hr[0, 1] = reset_weight     (gate of the data unit, driven by control)
    update  W_xz[0, 1] = W_hz[0, 1] = update_weight
    new     W_xn[0, 0] = new_input_weight,  W_hn[0, 0] = new_hidden_weight

Index 0 is the data dimension, index 1 the control dimension. Row 1 of every matrix is zero,
so the control unit always has r[1] = z[1] = 1/2 and n[1] = 0, and the data unit's gates
see only the control channel: r[0] = sigmoid(reset_weight * (x[1] + h[1])).

`gru_2d_step` returns x, h, r, z, n and h_new as 2-vectors [data, control]; the bar chart
shows the data dimension as the notebook's does. `gru_widget` rebuilds the notebook's sliders
(needs the optional `notebook` extra: ipywidgets).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields

import torch

from charlm.models.gru import GRUCell

DATA, CONTROL = 0, 1


@dataclass(frozen=True)
class GRUSettings:
    """One position of the notebook's eight sliders. Defaults are the sliders' initial values
    as the widget shows them: the notebook asks for control input 3.0 on a slider that ends at
    2.0, so ipywidgets clamps it to 2.0, the "high value" its exercises then keep."""

    data_input: float = 0.0
    control_input: float = 2.0
    data_hidden: float = 0.0
    control_hidden: float = 0.0
    reset_weight: float = 3.0
    update_weight: float = -3.0
    new_input_weight: float = 3.0
    new_hidden_weight: float = 3.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
            object.__setattr__(self, f.name, float(value))

    def with_(self, **changes) -> GRUSettings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown GRU setting(s): {', '.join(sorted(unknown))}")
        return GRUSettings(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Slider:
    name: str
    label: str
    low: float
    high: float
    step: float


# The notebook's sliders (labels, ranges and steps as in its cell [21]).
SLIDERS = (
    Slider("data_input", "Input x[0] (Data):", -2.0, 2.0, 0.1),
    Slider("control_input", "Input x[1] (Control):", -2.0, 2.0, 0.1),
    Slider("data_hidden", "Hidden x[0] (Data):", -2.0, 2.0, 0.1),
    Slider("control_hidden", "Hidden x[1] (Control):", -2.0, 2.0, 0.1),
    Slider("reset_weight", "Reset W_xr W_hr[0,1]:", -3.0, 3.0, 0.2),
    Slider("update_weight", "Update W_xz W_hz[0,1]:", -3.0, 3.0, 0.2),
    Slider("new_input_weight", "New Content W_xn[0,0]:", -3.0, 3.0, 0.2),
    Slider("new_hidden_weight", "New Content W_hn[0,0]:", -3.0, 3.0, 0.2),
)


@dataclass(frozen=True)
class GRUStep:
    """Each field is the 2-vector (data, control)."""

    x: tuple[float, float]
    h: tuple[float, float]
    r: tuple[float, float]
    z: tuple[float, float]
    n: tuple[float, float]
    h_new: tuple[float, float]

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    def data(self) -> dict[str, float]:
        """The data dimension of every quantity, as the bar chart shows it."""
        return {k: v[DATA] for k, v in asdict(self).items()}


def gru_2d_cell(settings: GRUSettings) -> GRUCell:
    """A GRUCell(2, 2) with the notebook's weight placement for these slider values, in float64
    so that slider values such as 1.6 are not rounded to float32."""
    cell = GRUCell(input_size=2, hidden_size=2).double()
    with torch.no_grad():
        for lin in (cell.W_xr, cell.W_hr, cell.W_xz, cell.W_hz, cell.W_xn, cell.W_hn):
            lin.weight.zero_()
        cell.W_xr.weight[DATA, CONTROL] = settings.reset_weight
        cell.W_hr.weight[DATA, CONTROL] = settings.reset_weight
        cell.W_xz.weight[DATA, CONTROL] = settings.update_weight
        cell.W_hz.weight[DATA, CONTROL] = settings.update_weight
        cell.W_xn.weight[DATA, DATA] = settings.new_input_weight
        cell.W_hn.weight[DATA, DATA] = settings.new_hidden_weight
    return cell


def gru_2d_batch(settings: GRUSettings, data_inputs, data_hiddens) -> dict[str, torch.Tensor]:
    """The cell on a batch of data-slider positions (control sliders and weights from
    `settings`): each result is a (N, 2) float64 tensor, keys x, h, r, z, n, h_new."""
    x0 = torch.as_tensor(data_inputs, dtype=torch.float64).reshape(-1)
    h0 = torch.as_tensor(data_hiddens, dtype=torch.float64).reshape(-1)
    if x0.shape != h0.shape:
        raise ValueError(f"data_inputs and data_hiddens differ in size: "
                         f"{x0.numel()} != {h0.numel()}")
    x = torch.stack([x0, torch.full_like(x0, settings.control_input)], dim=1)  # (N, 2)
    h = torch.stack([h0, torch.full_like(h0, settings.control_hidden)], dim=1)
    with torch.no_grad():
        h_new, r, z, n = gru_2d_cell(settings)(x, h)
    return dict(x=x, h=h, r=r, z=z, n=n, h_new=h_new)


def gru_2d_step(settings: GRUSettings | None = None, **overrides) -> GRUStep:
    """One step of the 2-D cell: `gru_2d_step(new_hidden_weight=-3.0)` changes one slider."""
    settings = (settings or GRUSettings()).with_(**overrides)
    out = gru_2d_batch(settings, [settings.data_input], [settings.data_hidden])
    return GRUStep(**{k: (v[0, DATA].item(), v[0, CONTROL].item()) for k, v in out.items()})


BAR_LABELS = {
    "x": "x[0]\nInput",
    "h": "h[0]\nPrev Hidden",
    "r": "r[0]\nReset Gate",
    "z": "z[0]\nUpdate Gate",
    "n": "n[0]\nNew Content",
    "h_new": "h_new[0]\nFinal Output",
}
BAR_COLORS = ["blue", "gray", "lightblue", "lightgreen", "orange", "red"]


def gru_step_figure(step: GRUStep, settings: GRUSettings | None = None):
    """The notebook's bar chart of the data dimension; returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    values = step.data()
    fig = Figure(figsize=(12, 5))
    ax = fig.subplots()
    ax.bar(range(len(values)), list(values.values()), color=BAR_COLORS)
    ax.set_ylim(-2, 2)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xticks([])
    title = "GRU Data Flow (Data Dimension)"
    if settings is not None:
        title += "\n" + ", ".join(f"{k}={v:g}" for k, v in settings.to_dict().items())
    ax.set_title(title, fontsize=10)
    for i, (key, value) in enumerate(values.items()):
        ax.text(i, 1.8, BAR_LABELS[key], ha="center", va="top")
        offset = 0.1 if value < 0 else -0.1
        ax.text(i, value + offset, f"{value:.2f}", ha="center",
                va="bottom" if value < 0 else "top")
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def save_gru_step_figure(settings: GRUSettings, path) -> str:
    """Bar chart for these settings written to `path` (the format its suffix names: png,
    pdf, svg, ...); returns the path."""
    from charlm.io import atomic_savefig

    fig = gru_step_figure(gru_2d_step(settings), settings)
    atomic_savefig(fig, path, dpi=100)
    return str(path)


def gru_widget(settings: GRUSettings | None = None):
    """The notebook's interactive explorer: eight sliders in four columns above the chart.

    Requires ipywidgets (`pip install charlm[notebook]`)."""
    try:
        import ipywidgets as w
    except ImportError as exc:  # optional dependency
        raise ImportError(
            "the GRU widget needs ipywidgets: pip install 'charlm[notebook]'"
        ) from exc
    settings = settings or GRUSettings()
    sliders = {
        s.name: w.FloatSlider(
            value=getattr(settings, s.name), min=s.low, max=s.high, step=s.step,
            readout_format=".1f", description=s.label,
            style={"description_width": "160px"},
        )
        for s in SLIDERS
    }
    image = w.Image(format="png")

    def redraw(**values):
        chosen = GRUSettings(**values)
        image.value = figure_png(gru_step_figure(gru_2d_step(chosen), chosen))

    w.interactive_output(redraw, sliders)
    names = [s.name for s in SLIDERS]
    columns = [w.VBox([sliders[n] for n in names[i : i + 2]]) for i in range(0, 8, 2)]
    return w.VBox([w.HBox(columns), image])
