import { useEffect, useState } from "preact/hooks";

/** A counter that moves when the page's theme changes: Lab's `data-jp-theme-light` on <body>,
 * Studio's class on <html>, the system's colour scheme. Views that bake colours into what they
 * draw (plotly charts) redraw on it; everything else follows the CSS variables by itself. */
export function useThemeVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((n) => n + 1);
    const observer = new MutationObserver(bump);
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
    const media = window.matchMedia?.("(prefers-color-scheme: dark)");
    media?.addEventListener("change", bump);
    return () => { observer.disconnect(); media?.removeEventListener("change", bump); };
  }, []);
  return version;
}
