/**
 * Reordering the home tiles by hand: a mouse drag, a touch long-press then drag, or the keyboard
 * (Shift + an arrow key on a focused tile). Escape during a drag cancels it. The list items carry `data-app`; the caller gets the
 * new order once a move ends and saves it.
 */

/** Shown next to the tiles and read out with each tile (aria-describedby). */
export const REORDER_HINT = 'To reorder, drag a tile, or focus it and press Shift with an arrow key.';

/** How far a mouse travels before a press becomes a drag (a shorter move is still a click). */
const DRAG_THRESHOLD_PX = 6;
/** A touch held this long without moving picks the tile up; moving sooner scrolls the page. */
const LONG_PRESS_MS = 350;
const TOUCH_SLOP_PX = 10;

export interface Reorderable {
  /** A tile is held: re-rendering the list now would drop it. */
  readonly dragging: boolean;
  destroy(): void;
}

export function orderOf(list: HTMLElement): string[] {
  return [...list.querySelectorAll<HTMLElement>(':scope > li[data-app]')].map((li) => li.dataset.app ?? '');
}

/** Items per row as laid out now (the grid's column count). */
function columns(list: HTMLElement): number {
  const items = [...list.querySelectorAll<HTMLElement>(':scope > li[data-app]')];
  const top = items[0]?.offsetTop;
  if (top === undefined) return 1;
  const n = items.filter((li) => li.offsetTop === top).length;
  return Math.max(1, n);
}

/**
 * Wires reordering on `list` (a `ul` of `li[data-app]`, each with one focusable tile).
 * `onMoved(order, name)` runs after a drag that changed the order and after every keyboard move
 * (also one at an edge, which changes nothing), so the position can be announced.
 */
export function makeReorderable(list: HTMLElement, onMoved: (order: string[], name: string) => void): Reorderable {
  let pending: { li: HTMLElement; pointerId: number; x: number; y: number; type: string; timer: number | null } | null = null;
  let drag: { li: HTMLElement; before: string[]; ghost: HTMLElement; dx: number; dy: number } | null = null;
  let suppressClick = false;

  // A tile's own menu (appmenu.ts) is not a handle: pressing it or using its arrow keys moves nothing.
  const itemOf = (t: EventTarget | null) =>
    t instanceof Element && t.closest('.menu-wrap') === null ? t.closest<HTMLElement>('li[data-app]') : null;

  const start = (x: number, y: number) => {
    if (pending === null) return;
    const li = pending.li;
    const rect = li.getBoundingClientRect();
    const ghost = li.cloneNode(true) as HTMLElement;
    ghost.classList.add('tile-ghost');
    ghost.setAttribute('aria-hidden', 'true');
    ghost.removeAttribute('data-app');
    ghost.style.width = `${rect.width}px`;
    ghost.style.height = `${rect.height}px`;
    document.body.append(ghost);
    drag = { li, before: orderOf(list), ghost, dx: x - rect.left, dy: y - rect.top };
    li.classList.add('dragging');
    list.classList.add('reordering');
    moveGhost(x, y);
  };

  const moveGhost = (x: number, y: number) => {
    if (drag === null) return;
    drag.ghost.style.transform = `translate(${x - drag.dx}px, ${y - drag.dy}px)`;
  };

  const hover = (x: number, y: number) => {
    if (drag === null) return;
    moveGhost(x, y);
    const over = itemOf(document.elementFromPoint(x, y));
    if (over === null || over === drag.li || over.parentElement !== list) return;
    const items = [...list.children];
    const from = items.indexOf(drag.li);
    const to = items.indexOf(over);
    list.insertBefore(drag.li, from < to ? over.nextSibling : over);
  };

  const finish = (commit: boolean) => {
    if (pending?.timer != null) window.clearTimeout(pending.timer);
    pending = null;
    if (drag === null) return;
    const { li, before, ghost } = drag;
    drag = null;
    ghost.remove();
    li.classList.remove('dragging');
    list.classList.remove('reordering');
    // The click that ends a drag (released now, or later after an Escape) is not an "open".
    suppressClick = true;
    if (commit) window.setTimeout(() => (suppressClick = false), 0);
    const after = orderOf(list);
    if (!commit) {
      for (const name of before) {
        const el = list.querySelector(`:scope > li[data-app="${CSS.escape(name)}"]`);
        if (el) list.append(el);
      }
      return;
    }
    if (after.join('\n') !== before.join('\n')) onMoved(after, li.dataset.app ?? '');
  };

  const onPointerDown = (ev: PointerEvent) => {
    if (!ev.isPrimary || (ev.pointerType === 'mouse' && ev.button !== 0)) return;
    suppressClick = false;
    const li = itemOf(ev.target);
    if (li === null || li.parentElement !== list) return;
    pending = { li, pointerId: ev.pointerId, x: ev.clientX, y: ev.clientY, type: ev.pointerType, timer: null };
    if (ev.pointerType !== 'mouse') {
      const p = pending;
      p.timer = window.setTimeout(() => {
        p.timer = null;
        if (pending === p) start(p.x, p.y);
      }, LONG_PRESS_MS);
    }
  };

  const onPointerMove = (ev: PointerEvent) => {
    if (pending === null || ev.pointerId !== pending.pointerId) return;
    if (drag !== null) {
      ev.preventDefault();
      hover(ev.clientX, ev.clientY);
      return;
    }
    const dist = Math.hypot(ev.clientX - pending.x, ev.clientY - pending.y);
    if (pending.type === 'mouse') {
      if (dist >= DRAG_THRESHOLD_PX) {
        start(pending.x, pending.y);
        hover(ev.clientX, ev.clientY);
      }
    } else if (dist > TOUCH_SLOP_PX) {
      // Moved before the long press: the person is scrolling.
      finish(false);
    }
  };

  const onPointerUp = (ev: PointerEvent) => {
    if (pending !== null && ev.pointerId === pending.pointerId) finish(true);
  };
  const onPointerCancel = (ev: PointerEvent) => {
    if (pending !== null && ev.pointerId === pending.pointerId) finish(false);
  };
  // While a tile is held, a touch moves it instead of scrolling the page.
  const onTouchMove = (ev: TouchEvent) => {
    if (drag !== null) ev.preventDefault();
  };
  const onClick = (ev: MouseEvent) => {
    // detail 0: Enter on a focused tile, always an "open".
    if (!suppressClick || ev.detail === 0) return;
    suppressClick = false;
    ev.preventDefault();
    ev.stopPropagation();
  };
  // A long press on a link opens the browser's menu; the press picks the tile up instead.
  const onContextMenu = (ev: Event) => {
    if (pending !== null && pending.type !== 'mouse') ev.preventDefault();
  };
  // Escape while holding a tile puts everything back where it was.
  const onEscape = (ev: KeyboardEvent) => {
    if (ev.key !== 'Escape' || drag === null) return;
    ev.preventDefault();
    finish(false);
  };
  const onKeyDown = (ev: KeyboardEvent) => {
    if (!ev.shiftKey || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(list), ArrowDown: columns(list) }[ev.key];
    if (delta === undefined) return;
    const li = itemOf(ev.target);
    if (li === null || li.parentElement !== list) return;
    ev.preventDefault();
    const before = orderOf(list);
    const from = before.indexOf(li.dataset.app ?? '');
    const to = Math.max(0, Math.min(before.length - 1, from + delta));
    if (to === from) {
      // At the edge: nothing moves, but the person still hears where the tile is.
      onMoved(before, li.dataset.app ?? '');
      return;
    }
    const focused = document.activeElement;
    const ref = list.children[to] ?? null;
    list.insertBefore(li, to > from ? (ref?.nextSibling ?? null) : ref);
    // Moving a node drops its focus; the person keeps working on the same tile.
    if (focused instanceof HTMLElement) focused.focus();
    onMoved(orderOf(list), li.dataset.app ?? '');
  };

  list.addEventListener('pointerdown', onPointerDown);
  window.addEventListener('keydown', onEscape);
  window.addEventListener('pointermove', onPointerMove);
  window.addEventListener('pointerup', onPointerUp);
  window.addEventListener('pointercancel', onPointerCancel);
  list.addEventListener('touchmove', onTouchMove, { passive: false });
  list.addEventListener('click', onClick, true);
  list.addEventListener('contextmenu', onContextMenu);
  list.addEventListener('keydown', onKeyDown);
  list.addEventListener('dragstart', (ev) => ev.preventDefault());

  return {
    get dragging() {
      return drag !== null || pending !== null;
    },
    destroy() {
      finish(false);
      window.removeEventListener('pointermove', onPointerMove);
      window.removeEventListener('pointerup', onPointerUp);
      window.removeEventListener('pointercancel', onPointerCancel);
      window.removeEventListener('keydown', onEscape);
    },
  };
}
