"""Report: page contexts as plain data, Jinja2 rendering, site writing, exports, publishing.

Never imports tensorflow.
"""

from reportgen.report.build import SiteContent, gather, metric_figures, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.inputs import ModelInfo, ReportInputs
from reportgen.report.site import MARKER, SiteWriter, check_output

__all__ = ["gather", "write_site", "metric_figures", "SiteContent", "Figures", "ReportInputs",
           "ModelInfo", "SiteWriter", "check_output", "MARKER"]
