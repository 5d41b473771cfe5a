// MathJax 3 configuration for pymdownx.arithmatex (generic mode). MathJax itself is served
// from the site (assets/mathjax/, added by docs/_hooks/mathjax_assets.py), not from a CDN.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
