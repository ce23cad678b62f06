// The two browser globals @microsoft/fetch-event-source (used by
// @jupyterhub/binderhub-client) reaches for that Node lacks: it calls window.fetch,
// window.setTimeout and window.clearTimeout, and document.removeEventListener when a
// stream ends. Node 20 has fetch and timers on globalThis; nothing else is faked.
globalThis.window ??= globalThis;
globalThis.document ??= {
  hidden: false,
  cookie: "",
  addEventListener() {},
  removeEventListener() {},
};
