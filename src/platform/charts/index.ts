/** Chart rendering (SVG via vega-lite and vega, PNG via resvg); only core is imported. */
export * from './render.js';
