"""Every component id of the dashboard, in one place (views import them; tests find them)."""

# shared state (dcc.Store); the reference, compared and class in focus are their dropdowns' values
RUN = "run-name"
COMBINATIONS = "combinations"  # keys "model|<evaluation set>" (Combo.key) picked in the evaluation table
SELECTION = "selection"  # {"samples": [ids] | None, "source": view name}

# header
RUN_DROPDOWN = "run-dropdown"
CLEAR_SELECTION = "clear-selection"
SELECTION_BADGE = "selection-badge"

# snapshot export (header)
EXPORT_BUTTON = "export-button"
EXPORT_CANCEL = "export-cancel"
EXPORT_PROGRESS = "export-progress"
EXPORT_STATUS = "export-status"
EXPORT_DOWNLOAD = "export-download"

# evaluation table
EVAL_TABLE = "eval-table"
EVAL_SEVERITY = "eval-severity"
EVAL_MODE = "eval-mode"  # cells as bars or as numbers
EVAL_KEYS = "eval-keys"  # the table's keyboard focus: arrow keys move between bars, Enter picks
EVAL_NOTE = "eval-note"
EVAL_PREPARE = "eval-prepare"  # run whose correctness matrix the table asked the background to compute
EVAL_DRAWN = "eval-drawn"  # what the drawn table shows (structure and parts): a patch sets the parts that differ
TABLE_ANSWERED = "table-answered"  # true once the table's first answer came
FIRST_VIEWS_DRAWN = "first-views-drawn"  # true once the first page's views answered and were drawn: run-wide views

# selected combinations
COMBO_TABLE = "combo-table"
REFERENCE_DROPDOWN = "reference-dropdown"
COMPARED_DROPDOWN = "compared-dropdown"
CLICK_TARGET = "click-target"  # what a click in the evaluation table sets: the reference or the compared combination

# local geometry
LOCAL_GRAPH = "local-graph"
LOCAL_DIFF_METRIC = "local-diff-metric"
LOCAL_DIFF_RANGE = "local-diff-range"
LOCAL_DRAWN = "local-drawn"  # the key of what the local geometry figure shows: its own brush leaves it as it is
CLASS_DROPDOWN = "class-dropdown"
CLASS_RANK = "class-rank"  # how the class pre-selection ranks classes: by confusion or by change (issue 14)

# global geometry
GLOBAL_GRAPH = "global-graph"
GLOBAL_DENSITY = "global-density"
GLOBAL_NOTE = "global-note"
GLOBAL_BOXES = "global-boxes"  # the box brushes drawn on the parallel coordinates

# samples
SAMPLES_GRID = "samples-grid"
SAMPLES_HTML = "samples-html"  # the gallery's cards as HTML (app.snapshot.to_html), put into the grid in the browser
SAMPLES_SORT = "samples-sort"
SAMPLES_COUNT = "samples-count"

# robustness
ROBUST_MARGIN = "robust-margin"
ROBUST_TABLE1 = "robust-table1"
ROBUST_SWEETSPOT = "robust-sweetspot"

# the run's problems (one panel above the views; empty when the run is valid)
RUN_PROBLEMS = "run-problems"

# curse of dimensionality (Fig. 3)
DIM_GRAPH = "dim-graph"

# per-layer sensitivity (layer × sparsity heatmap; a click compares that model with its dense parent)
SENS_GRAPH = "sens-graph"
SENS_METRIC = "sens-metric"
SENS_METHOD = "sens-method"
SENS_NOTE = "sens-note"

# pruning-identified exemplars of the compared model's population
PIE_GRAPH = "pie-graph"
PIE_NOTE = "pie-note"
PIE_SELECT = "pie-select"

# model map and model similarity (issue 16)
MODEL_HIGHLIGHT = "model-highlight"  # {"models": [ids] | None, "source": view name}: a brushed group of models
MODELMAP_GRAPH = "modelmap-graph"
MODELMAP_PLACEMENT = "modelmap-placement"
SIMILARITY_GRAPH = "similarity-graph"
SIMILARITY_MEASURE = "similarity-measure"
SIMILARITY_SET = "similarity-set"
SIMILARITY_NOTE = "similarity-note"

# attribution maps (issue 15): the gallery's method, the drift view
SAMPLES_ATTR_METHOD = "samples-attr-method"
ATTR_DRIFT = "attr-drift"
ATTR_METRIC = "attr-metric"

# the views' tabs (issue 14): the paper's views (shown first) and the model-level views, which draw only while shown
VIEW_TABS = "view-tabs"
TAB_PAPER = "tab-paper"
TAB_MODELS = "tab-models"
# the key of what each model-level view's figure shows (app.views.common.draw_while_shown): opening their tab
# again with nothing changed sends nothing
MODELMAP_DRAWN = "modelmap-drawn"
SIMILARITY_DRAWN = "similarity-drawn"
SENS_DRAWN = "sens-drawn"
PIE_DRAWN = "pie-drawn"
ATTR_DRAWN = "attr-drawn"
