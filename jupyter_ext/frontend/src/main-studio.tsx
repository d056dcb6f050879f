// Studio's entry (server/static/studio.js): reads the page's config and mounts the app.
import { render } from "preact";
import { createApi } from "./api/client";
import { App } from "./studio/app";
import "./studio/studio.css";

interface StudioConfig { base?: string; mode?: "headless" | "jupyter" }

function config(): StudioConfig {
  const element = document.getElementById("coflux-config");
  try {
    return element?.textContent ? (JSON.parse(element.textContent) as StudioConfig) : {};
  } catch {
    return {};
  }
}

const settings = config();
const root = document.getElementById("coflux-studio") ?? document.body.appendChild(document.createElement("div"));
const api = createApi({ base: settings.base ?? new URL(".", location.href).pathname });
render(<App api={api} mode={settings.mode ?? "headless"} />, root);
