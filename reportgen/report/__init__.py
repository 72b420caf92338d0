"""Report: page contexts as plain data, Jinja2 rendering, site writing, exports, publishing.

Never imports tensorflow.
"""

from reportgen.report.build import metric_figures, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.site import MARKER, SiteWriter, check_output

__all__ = ["write_site", "metric_figures", "Figures", "SiteWriter", "check_output", "MARKER"]
