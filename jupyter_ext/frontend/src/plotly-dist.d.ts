// plotly.js-basic-dist-min ships no types: it is plotly.js (basic traces), typed by @types/plotly.js.
declare module "plotly.js-basic-dist-min" {
  import * as Plotly from "plotly.js";
  export default Plotly;
}
