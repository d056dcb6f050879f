// Fixed-row-height virtualisation: only the rows in view (plus a margin) are in the DOM.
import { useLayoutEffect, useRef, useState } from "preact/hooks";

export interface Window { first: number; last: number; scrollTop: number; height: number }

export function useVirtualRows(count: number, rowHeight: number, overscan = 10) {
  const ref = useRef<HTMLDivElement>(null);
  const [box, setBox] = useState({ scrollTop: 0, height: 400 });
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const update = () => setBox((old) => (old.scrollTop === el.scrollTop && old.height === el.clientHeight ? old :
      { scrollTop: el.scrollTop, height: el.clientHeight }));
    update();
    el.addEventListener("scroll", update, { passive: true });
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(update);
    observer?.observe(el);
    return () => { el.removeEventListener("scroll", update); observer?.disconnect(); };
  }, []);
  const first = Math.max(0, Math.floor(box.scrollTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((box.scrollTop + box.height) / rowHeight) + overscan);
  return { ref, first, last, total: count * rowHeight, box };
}
