/* Material requests the search index (every page's largest download) with XMLHttpRequest as soon as its
   bundle runs. Hold that one request until the reader reaches for search: a focus in the search box, a
   click on its icon, or the "/", "s", "f" shortcuts. Pages in another language than the default fetch
   their own language's index (src/portal/site_hooks/search_index.py writes one per language).
   The first-paint loader runs this just before Material's bundle (src/portal/site_hooks/first_paint.py). */
(() => {
  const DEFAULT_LANGUAGE = "en"; // portal.paths.DEFAULT_LANGUAGE
  const INDEX = "search/search_index.json";
  let go;
  const ready = new Promise((resolve) => (go = resolve));
  const X = XMLHttpRequest.prototype;
  const open = X.open;
  const send = X.send;
  const on = (type, listener) => addEventListener(type, listener, true);
  const near = (event, selector) => event.target.closest && event.target.closest(selector);
  on("focusin", (e) => near(e, ".md-search") && go());
  on("click", (e) => near(e, "label[for=__search]") && go());
  on("keydown", (e) => ["/", "s", "f", "S", "F"].includes(e.key) && go());
  X.open = function (method, url, ...rest) {
    this.lmaLazy = String(url).includes(INDEX);
    const lang = document.documentElement.lang;
    if (this.lmaLazy && lang !== DEFAULT_LANGUAGE) url = String(url).replace(INDEX, lang + "/" + INDEX);
    return open.call(this, method, url, ...rest);
  };
  X.send = function (...args) {
    if (!this.lmaLazy) return send.apply(this, args);
    ready.then(() => send.apply(this, args));
  };
})();
