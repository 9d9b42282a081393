// Draws the dashboard's figures with plotly.js, for the served dashboard and the static export.
//
// A figure is a <script type="application/json" class="plot"> block holding its plotly spec
// (data, layout, config) right after the <div> it is drawn into
// (s5p_lockdown.dashboard.figures.plot_html). Every block in the page, and every block added
// later (the served dashboard replaces a figure's HTML when a visitor chooses another country),
// is drawn once, with Plotly.newPlot:
//   - one figure per task, those on the screen first, so the first screen shows before the
//     figures below it are drawn;
//   - only once its div has a width (a figure of a hidden view waits until it is shown), so
//     that it takes the width of its place; a drawn figure whose div changes width (shown
//     again, window resized) is resized;
//   - a figure removed from the page is purged (plotly's listeners and memory).
// S5P_PLOTS.show(block, spec) puts another spec in a block and redraws its figure in place.
(function () {
  'use strict';
  var waiting = [];  // blocks not drawn yet
  var timer = null;
  var sizes = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var div = entry.target, width = entry.contentRect.width;
      if (width <= 0) { return; }
      if (div.s5pDrawn) {
        if (div._fullLayout && Math.abs(div._fullLayout.width - width) > 1) {
          Plotly.Plots.resize(div);
        }
      } else {
        schedule();
      }
    });
  });

  function target(block) { return block.previousElementSibling; }

  function onScreen(div) {
    var box = div.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }

  function draw(block) {
    var div = target(block), spec = JSON.parse(block.textContent);
    div.s5pDrawn = true;
    Plotly.newPlot(div, spec.data, spec.layout, spec.config);
  }

  function drawNext() {
    timer = null;
    waiting = waiting.filter(function (block) { return block.isConnected && target(block); });
    var ready = waiting.filter(function (block) {
      return target(block).getBoundingClientRect().width > 0;
    });
    if (!ready.length) { return; }  // the others wait to be shown (ResizeObserver)
    var block = ready.filter(function (b) { return onScreen(target(b)); })[0] || ready[0];
    waiting.splice(waiting.indexOf(block), 1);
    try {
      draw(block);
    } finally {
      schedule();  // the others are drawn even if this one failed
    }
  }

  function schedule() {
    if (timer === null && waiting.length && window.Plotly) { timer = setTimeout(drawNext, 0); }
  }

  function add(block) {
    var div = target(block);
    if (!div || waiting.indexOf(block) >= 0) { return; }
    waiting.push(block);
    sizes.observe(div);
    needPlotly();
    schedule();
  }

  function blocksIn(node) {
    if (node.nodeType !== 1) { return []; }
    var found = Array.prototype.slice.call(node.querySelectorAll('script.plot'));
    if (node.matches('script.plot')) { found.push(node); }
    return found;
  }

  function purge(node) {
    if (node.nodeType !== 1) { return; }
    var plots = Array.prototype.slice.call(node.querySelectorAll('.js-plotly-plot'));
    if (node.classList.contains('js-plotly-plot')) { plots.push(node); }
    plots.forEach(function (div) { sizes.unobserve(div); Plotly.purge(div); });
  }

  window.S5P_PLOTS = {
    show: function (block, spec) {
      block.textContent = JSON.stringify(spec);
      var div = target(block);
      if (div.s5pDrawn) {
        Plotly.react(div, spec.data, spec.layout, spec.config);
      } else {
        add(block);
      }
    }
  };

  function start() {
    blocksIn(document.body).forEach(add);
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.removedNodes.forEach(purge);
        mutation.addedNodes.forEach(function (node) { blocksIn(node).forEach(add); });
      });
    }).observe(document.body, {childList: true, subtree: true});
  }

  // plotly.js (4.6 MB), when the page has not loaded it itself, comes from the URL in this
  // script's data-plotly attribute. Its file is fetched at once (the server lets browsers
  // keep it), but it is run only when the first figure arrives: a script element loading
  // before the page's load event delays Voilà, which starts its work on that event, and run
  // between that event and the first figure, its evaluation (~0.6 s of the main thread,
  // seconds on a loaded machine) overlapped Voilà's request for the widgets' state, which
  // then sometimes timed out ("widget model not found": an empty page).
  var plotlyUrl = document.currentScript.getAttribute('data-plotly');
  var plotlyRequested = false;
  if (!window.Plotly && plotlyUrl) { fetch(plotlyUrl).catch(function () {}); }

  function needPlotly() {
    if (window.Plotly || plotlyRequested || !plotlyUrl) { return; }
    plotlyRequested = true;
    var script = document.createElement('script');
    script.src = plotlyUrl;
    script.onload = schedule;
    document.head.appendChild(script);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
