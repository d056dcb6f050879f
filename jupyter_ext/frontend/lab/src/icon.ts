import { LabIcon } from "@jupyterlab/ui-components";
import svgstr from "../style/icon.svg";

/** The Coflux mark: a small run graph (the sidebar tab, run tabs and palette items). */
export const cofluxIcon = new LabIcon({ name: "coflux-studio:coflux", svgstr });
