/* Inlined where Material's bundle <script> was, by src/portal/site_hooks/first_paint.py, and not copied into
   the site (mkdocs.yml exclude_docs): it is what requests the stylesheets and scripts, so it cannot be one.
   After the first (largest) contentful paint, or 3 s after "load" where the browser cannot report one, it
   gives each held <link data-lma-href> its href, then runs the scripts listed in #lma-scripts in order
   (Material's bundle last). The bundle starts on DOMContentLoaded and sizes its sidebars on window "load",
   both long past by then, so the loader replays them once the bundle has run. */
(()=>{let started=false;const go=()=>{if(started)return;started=true;
for(const l of document.querySelectorAll("link[data-lma-href]")){l.onload=()=>{l.media="all";lmaStyled()};l.onerror=lmaStyled;l.href=l.dataset.lmaHref}
const scripts=JSON.parse(document.getElementById("lma-scripts").textContent);scripts.forEach((src,i)=>{const s=document.createElement("script");
s.src=src;s.async=false;if(i===scripts.length-1)s.onload=()=>{document.dispatchEvent(new Event("DOMContentLoaded"));dispatchEvent(new Event("load"))};
document.body.appendChild(s)})};
const types=PerformanceObserver.supportedEntryTypes||[],type=["largest-contentful-paint","paint"].find(t=>types.includes(t));
if(type)new PerformanceObserver(()=>setTimeout(go,50)).observe({type,buffered:true});
addEventListener("load",()=>setTimeout(go,type?3000:0),{once:true})})()
