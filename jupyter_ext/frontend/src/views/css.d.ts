// Stylesheets imported for their side effect: esbuild bundles them into the CSS beside the JS.
declare module "*.css";
