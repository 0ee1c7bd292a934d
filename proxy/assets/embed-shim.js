// Bloud's run-time URL shim for embedded apps (docs/embed.md, "Run-time shim").
//
// bloud-proxy serves this file at <prefix>/__bloud__/shim.<hash>.js and puts
// <script src=… data-prefix="/embed/<app>" data-exclude='["/x"]'> first in every HTML document
// of an `embed` route, so it runs before any script of the app. The app thinks it lives at `/`
// and builds root-absolute URLs at run time (fetch('/api'), script.src = '/chunk.js'); the
// server-side rewrite never sees those. This script patches the browser APIs that take URLs and
// moves every same-origin, root-absolute URL under the prefix. It leaves alone: other origins,
// relative URLs (they already resolve under the prefix), URLs already under the prefix or under
// another app's /embed/, the route's `exclude` paths and Authentik's paths.
(function () {
  'use strict';
  var me = document.currentScript;
  var P = me && me.getAttribute('data-prefix');
  if (!P || window.__bloudShim) return;
  window.__bloudShim = P;
  var W = window;
  var NEVER = [/*NEVER_PREFIXED*/];
  var EX;
  try {
    EX = JSON.parse(me.getAttribute('data-exclude') || '[]');
  } catch (e) {
    EX = [];
  }
  EX = EX.concat(NEVER, [P, '/embed']);
  var LOC = W.location;

  // `path` is `pre` or lies below it on a segment boundary (/a covers /a/b, not /ab).
  function under(path, pre) {
    return path.slice(0, pre.length) === pre &&
      (path.length === pre.length || pre.slice(-1) === '/' || path.charAt(pre.length) === '/');
  }

  function keep(path) {
    for (var i = 0; i < EX.length; i++) if (under(path, EX[i])) return true;
    return false;
  }

  // The URL to use instead of `u`, or `u` itself when it stays as written.
  function map(u) {
    if (u == null || (typeof u !== 'string' && !(u instanceof URL))) return u;
    // The URL parser skips leading spaces and control characters; so must the check.
    var s = String(u).replace(/^[\x00-\x20]+/, '');
    if (s.charAt(0) === '/') {
      var c = s.charAt(1);
      // `//host` and `/\host` leave the origin.
      if (c === '/' || c === '\\') return u;
      return keep(s.split(/[?#]/)[0]) ? u : P + s;
    }
    if (!/^(https?|wss?):/i.test(s)) return u;
    var url;
    try {
      url = new URL(s);
    } catch (e) {
      return u;
    }
    if (url.host !== LOC.host || keep(url.pathname)) return u;
    var secure = LOC.protocol === 'https:';
    if (url.protocol !== LOC.protocol && url.protocol !== (secure ? 'wss:' : 'ws:')) return u;
    url.pathname = P + url.pathname;
    return url.href;
  }

  function mapSrcset(v) {
    return typeof v !== 'string' ? v : v.replace(/(^|,)(\s*)([^\s,]+)/g, function (m, a, b, url) {
      return a + b + map(url);
    });
  }

  // HTML given as a string: the URL attributes the server-side rewrite handles.
  var ATTR_RE = /(\s(?:src|href|action|formaction|poster|data|srcset)\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)/gi;
  function mapHtml(h) {
    if (typeof h !== 'string' || h.indexOf('=') < 0) return h;
    return h.replace(ATTR_RE, function (m, lead, v) {
      var q = v.charAt(0) === '"' || v.charAt(0) === "'" ? v.charAt(0) : '';
      var raw = q ? v.slice(1, -1) : v;
      var out = /srcset\s*=\s*$/i.test(lead) ? mapSrcset(raw) : map(raw);
      return out === raw ? m : lead + q + out + q;
    });
  }

  function wrap(obj, name, make) {
    var orig = obj && obj[name];
    if (typeof orig === 'function') obj[name] = make(orig);
  }

  // Replaces the setter of an accessor property on a prototype.
  function setter(Ctor, name, f) {
    var proto = W[Ctor] && W[Ctor].prototype;
    var d = proto && Object.getOwnPropertyDescriptor(proto, name);
    if (!d || !d.set) return;
    Object.defineProperty(proto, name, {
      configurable: true,
      enumerable: d.enumerable,
      get: d.get,
      set: function (v) {
        d.set.call(this, f(v));
      },
    });
  }

  // fetch: strings, URL objects and Request objects.
  wrap(W, 'fetch', function (orig) {
    return function (input, init) {
      if (!(input instanceof Request)) return orig.call(this, map(input), init);
      var to = map(input.url);
      if (to === input.url) return orig.call(this, input, init);
      var self = this;
      var copy = {
        method: input.method, headers: input.headers, mode: input.mode, credentials: input.credentials,
        cache: input.cache, redirect: input.redirect, referrer: input.referrer,
        referrerPolicy: input.referrerPolicy, integrity: input.integrity, keepalive: input.keepalive,
        signal: input.signal,
      };
      if (input.method === 'GET' || input.method === 'HEAD') return orig.call(this, new Request(to, copy), init);
      // The body is read into memory first: a Request built from another Request's body
      // stream would be a streaming upload, which HTTP/1.1 servers never receive.
      return input.arrayBuffer().then(function (body) {
        copy.body = body;
        return orig.call(self, new Request(to, copy), init);
      });
    };
  });

  wrap(W.XMLHttpRequest && XMLHttpRequest.prototype, 'open', function (orig) {
    return function (method, url) {
      var args = [].slice.call(arguments);
      args[1] = map(url);
      return orig.apply(this, args);
    };
  });

  // Constructors taking a URL first. The replacement shares the prototype, so `instanceof`
  // and static constants (WebSocket.OPEN) still work.
  ['WebSocket', 'EventSource', 'Worker', 'SharedWorker'].forEach(function (name) {
    var C = W[name];
    if (typeof C !== 'function') return;
    var F = function (url) {
      var args = [].slice.call(arguments);
      args[0] = map(url);
      return Reflect.construct(C, args, new.target || F);
    };
    F.prototype = C.prototype;
    Object.setPrototypeOf(F, C);
    W[name] = F;
  });

  wrap(W.navigator, 'sendBeacon', function (orig) {
    return function (url, data) {
      return orig.call(this, map(url), data);
    };
  });

  ['pushState', 'replaceState'].forEach(function (name) {
    wrap(W.History && History.prototype, name, function (orig) {
      return function (state, title, url) {
        var args = [].slice.call(arguments);
        if (args.length > 2) args[2] = map(url);
        return orig.apply(this, args);
      };
    });
  });

  wrap(W, 'open', function (orig) {
    return function (url) {
      var args = [].slice.call(arguments);
      args[0] = map(url);
      return orig.apply(this, args);
    };
  });

  // location.assign/replace and `location.href = …` cannot be patched (Location's members are
  // unforgeable). Where the Navigation API exists, a navigation of this frame to a root path is
  // cancelled and made again under the prefix. Form posts and history traversals are left alone.
  if (W.navigation && W.navigation.addEventListener) {
    W.navigation.addEventListener('navigate', function (e) {
      if (!e.cancelable || e.formData || e.downloadRequest != null || e.navigationType === 'traverse') return;
      var url = e.destination.url;
      var to = map(url);
      if (to === url) return;
      e.preventDefault();
      W.navigation.navigate(to, { history: e.navigationType === 'replace' ? 'replace' : 'auto', state: e.destination.getState() });
    });
  }

  // URL properties of elements.
  [
    ['HTMLScriptElement', 'src'], ['HTMLImageElement', 'src'], ['HTMLLinkElement', 'href'],
    ['HTMLAnchorElement', 'href'], ['HTMLAreaElement', 'href'], ['HTMLFormElement', 'action'],
    ['HTMLIFrameElement', 'src'], ['HTMLMediaElement', 'src'], ['HTMLVideoElement', 'poster'],
    ['HTMLSourceElement', 'src'], ['HTMLObjectElement', 'data'], ['HTMLEmbedElement', 'src'],
    ['HTMLButtonElement', 'formAction'], ['HTMLInputElement', 'formAction'],
    ['HTMLInputElement', 'src'], ['HTMLTrackElement', 'src'],
  ].forEach(function (p) {
    setter(p[0], p[1], map);
  });
  setter('HTMLImageElement', 'srcset', mapSrcset);
  setter('HTMLSourceElement', 'srcset', mapSrcset);

  // setAttribute: the same attributes, on HTML elements (names are case-insensitive there).
  var ATTRS = { src: 1, href: 1, action: 1, formaction: 1, poster: 1, data: 1, srcset: 2 };
  var TAGS = /^(script|img|link|a|area|form|iframe|video|audio|source|object|embed|button|input|track|base)$/;
  wrap(W.Element && Element.prototype, 'setAttribute', function (orig) {
    return function (name, value) {
      var n = String(name).toLowerCase();
      var kind = ATTRS[n];
      if (kind && this instanceof HTMLElement && TAGS.test(this.localName) &&
          (n !== 'data' || this.localName === 'object')) {
        value = kind === 2 ? mapSrcset(value) : map(value);
      }
      return orig.call(this, name, value);
    };
  });

  // HTML strings.
  setter('Element', 'innerHTML', mapHtml);
  setter('Element', 'outerHTML', mapHtml);
  setter('ShadowRoot', 'innerHTML', mapHtml);
  wrap(W.Element && Element.prototype, 'insertAdjacentHTML', function (orig) {
    return function (where, html) {
      return orig.call(this, where, mapHtml(html));
    };
  });
  wrap(W.Range && Range.prototype, 'createContextualFragment', function (orig) {
    return function (html) {
      return orig.call(this, mapHtml(html));
    };
  });
  ['write', 'writeln'].forEach(function (name) {
    wrap(W.Document && Document.prototype, name, function (orig) {
      return function () {
        return orig.apply(this, [].map.call(arguments, mapHtml));
      };
    });
  });
})();
