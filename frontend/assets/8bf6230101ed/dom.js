// Building the page without innerHTML: every piece of text from the API goes
// in as a text node, so a product name can never become markup. Styling is by
// class only; the Content-Security-Policy (style-src 'self') forbids inline
// styles, and nothing here ever sets one.

/**
 * Create an element. `attributes` maps names to values: `class` and `for`
 * as in HTML, `on<event>` to a listener, `true`/`false` for boolean
 * attributes, `null`/`undefined` to leave one out. Children are nodes,
 * strings, numbers or (nested) arrays of them; `null` and `false` are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'style') {
      throw new Error('inline styles are blocked by the Content-Security-Policy; use a class');
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/** Append nodes, strings and arrays of them to `parent`. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace everything inside `parent` with `children`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** Read a polite message to screen-reader users without moving focus. */
export function announce(message) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes the same sentence twice in a row be read twice.
  region.textContent = '';
  window.setTimeout(() => { region.textContent = message; }, 50);
}

/** A box for a message: `kind` is `error`, `success` or `info`. */
export function notice(kind, ...children) {
  return h('div', { class: `notice notice--${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

let fieldCount = 0;

/**
 * A labelled form control with an optional hint and a slot for its error,
 * tied together with aria-describedby. Returns `{ wrapper, control, showError }`.
 */
export function field({ label, name, type = 'text', value = '', hint, required = false, options, rows, attributes = {} }) {
  fieldCount += 1;
  const id = `field-${name}-${fieldCount}`;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  let control;
  const common = { id, name, required, 'aria-describedby': [hintId, errorId].filter(Boolean).join(' '), ...attributes };
  if (type === 'select') {
    control = h('select', common, (options ?? []).map(([optionValue, text]) =>
      h('option', { value: optionValue, selected: optionValue === value }, text)));
  } else if (type === 'textarea') {
    control = h('textarea', { ...common, rows: rows ?? 4 });
    control.value = value;
  } else if (type === 'checkbox') {
    control = h('input', { ...common, type, checked: Boolean(value) });
  } else {
    control = h('input', { ...common, type });
    control.value = value;
  }
  const error = h('p', { class: 'field__error', id: errorId, hidden: true });
  const labelElement = h('label', { for: id, class: 'field__label' }, label, required ? h('span', { class: 'field__required', 'aria-hidden': 'true' }, ' *') : null);
  const wrapper = type === 'checkbox'
    ? h('div', { class: 'field field--checkbox' }, control, labelElement, hint ? h('p', { class: 'field__hint', id: hintId }, hint) : null, error)
    : h('div', { class: 'field' }, labelElement, hint ? h('p', { class: 'field__hint', id: hintId }, hint) : null, control, error);
  const showError = (message) => {
    error.textContent = message ?? '';
    error.hidden = !message;
    if (message) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  };
  return { wrapper, control, showError };
}

/** A button that shows it is busy and cannot be pressed twice meanwhile. */
export async function whileBusy(button, busyText, work) {
  const idle = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = idle;
  }
}
