/* Inlined in every page's <head>, where its stylesheets were, by src/portal/site_hooks/first_paint.py
   (before the critical CSS), and not copied into the site (mkdocs.yml exclude_docs): it must run before
   the first paint, so it cannot wait for a request. <html> carries the class lma-loading, which scopes
   the critical CSS, until each held stylesheet has loaded (or failed); the hook replaces STYLESHEET_COUNT
   with their number. */
document.documentElement.classList.add("lma-loading");var lmaPending=STYLESHEET_COUNT;function lmaStyled(){--lmaPending||document.documentElement.classList.remove("lma-loading")}
