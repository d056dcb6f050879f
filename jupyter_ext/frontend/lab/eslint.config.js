// The front-end's own lint rules, applied to this package's sources (run from lab/).
import shared from "../eslint.config.js";

export default [...shared, { ignores: ["lib/", "*.mjs"] }];
