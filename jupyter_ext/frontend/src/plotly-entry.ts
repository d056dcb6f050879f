// The separately loaded charting bundle (server/static/plotly.js): views import it lazily with
// loadPlotly (src/views/plotly.ts), so pages without charts never download plotly.js.
import Plotly from "plotly.js-basic-dist-min";

export default Plotly;
