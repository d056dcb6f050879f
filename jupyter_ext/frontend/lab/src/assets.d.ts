// esbuild bundles imported CSS into lib/index.css and SVG as text.
declare module "*.css";
declare module "*.svg" {
  const text: string;
  export default text;
}
