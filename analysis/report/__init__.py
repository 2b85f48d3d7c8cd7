"""`charlm report`: run the bench and the analyses in stages and write CSVs, figures and
REPORT.md under one folder.

Three layers:
- `pipeline`: stages and resume (`build_report`, `run_cells`), the only layer that reads or
  writes files, on `config` (`ReportConfig`, `Context`);
- `summaries`: pure functions, DataFrame in -> key table and findings out;
- `render`: figures (calls into analysis.plots) and REPORT.md.
`ingest` turns the bench's JSON into tables; `progress` prints where a run is.
"""

from analysis.report.config import Context, ReportConfig, default_out, reference_out
from analysis.report.ingest import bench_tables, expected_workload_ids
from analysis.report.pipeline import STAGES, build_report, run_bench, run_cells
from analysis.report.progress import BenchProgress, Progress, parse_bench_log
from analysis.report.render import md_table, render

__all__ = ["STAGES", "BenchProgress", "Context", "Progress", "ReportConfig", "bench_tables",
           "build_report", "default_out", "expected_workload_ids", "md_table",
           "parse_bench_log", "reference_out", "render", "run_bench", "run_cells"]
