/* imagematch ticket sidebar (Zendesk App Framework v2).
 *
 * Every call to imagematch goes through client.request with secure: true: Zendesk's proxy replaces
 * {{setting.api_token}} with the secure setting, so the token never reaches this page. Pictures
 * come as data: URLs in JSON (?format=json) because client.request carries no binary bodies.
 * The DOM is built with textContent only: nothing from the API is parsed as HTML.
 */
(function () {
  'use strict';

  var POLL_MS = 3000;
  var BAND_TEXT = { confident: 'Confident', check: 'Check', no_match: 'No match' };
  var STATUS_TEXT = { pending: 'Processing…', processing: 'Processing…', failed: 'Failed',
    complete: 'Complete', skipped: 'Skipped' };

  var client = ZAFClient.init();
  var state = { apiUrl: '', ticketId: null, agent: null, timer: null, cards: {}, pictures: {}, names: {} };
  var root = document.getElementById('app');

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === 'text') { node.textContent = attrs[key]; }
      else if (key === 'onclick') { node.addEventListener('click', attrs[key]); }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function api(method, path, body) {
    var options = {
      url: state.apiUrl + path,
      type: method,
      headers: { Authorization: 'Bearer {{setting.api_token}}' },
      secure: true,
      cors: false,
      dataType: 'json'
    };
    if (body !== undefined) {
      options.contentType = 'application/json';
      options.data = JSON.stringify(body);
    }
    return client.request(options);
  }

  function resize() {
    var height = Math.max(document.documentElement.scrollHeight, 60);
    client.invoke('resize', { width: '100%', height: height + 'px' });
  }

  function reasonOf(error) {
    if (error instanceof Error) { return 'The app failed: ' + error.message; }
    var detail = error && error.responseJSON && error.responseJSON.detail;
    if (typeof detail === 'string') { return detail; }
    return 'imagematch answered ' + ((error && error.status) || 'nothing');
  }

  /* A picture (thumbnail or catalog image) into an <img>, fetched once per path. */
  function picture(path, cls, alt) {
    var img = el('img', { class: cls || '', alt: alt || '' });
    if (!path) { return el('div', { class: 'noimg' }); }
    if (!state.pictures[path]) {
      state.pictures[path] = api('GET', path + '?format=json').then(function (data) { return data.data_url; });
    }
    state.pictures[path].then(function (url) { img.src = url; resize(); }, function () {
      img.replaceWith(el('div', { class: 'noimg' }));
    });
    return img;
  }

  function bandChip(band, confidence) {
    if (!band) { return null; }
    var sure = typeof confidence === 'number' ? ' ' + Math.round(confidence * 100) + '%' : '';
    return el('span', { class: 'band ' + band, text: (BAND_TEXT[band] || band) + sure,
      title: 'How likely the first product is right' });
  }

  function productRow(match, extra) {
    state.names[match.product_id] = match.name || match.product_id;
    var what = el('span', { class: 'what' }, [
      el('span', { class: 'name', text: match.name || match.product_id, title: match.product_id }),
      el('span', { class: 'muted', text: extra })
    ]);
    return el('li', { class: 'product' }, [picture(match.image || productImage(match.product_id), '',
      match.name), what]);
  }

  function productImage(productId) {
    return '/v1/products/' + encodeURIComponent(productId) + '/image';
  }

  function sendFeedback(photo, verdict, productId) {
    var body = { verdict: verdict, product_id: productId || null, comment: null, agent: state.agent };
    return api('POST', '/v1/jobs/' + photo.job_id + '/feedback', body).then(load, showError);
  }

  function choose(photo, productId) {
    var top = photo.matches[0];
    var verdict = top && top.product_id === productId ? 'confirmed' : 'corrected';
    return sendFeedback(photo, verdict, productId);
  }

  function searchBox(photo, holder) {
    var input = el('input', { type: 'search', placeholder: 'Product name or id', 'aria-label': 'Find a product' });
    var results = el('ul', { class: 'products' });
    var pending = null;
    input.addEventListener('input', function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        var q = input.value.trim();
        if (!q) { results.textContent = ''; resize(); return; }
        api('GET', '/v1/products?limit=8&q=' + encodeURIComponent(q)).then(function (data) {
          results.textContent = '';
          (data.products || []).forEach(function (product) {
            var row = productRow({ product_id: product.id, name: product.name }, product.category || '');
            row.appendChild(el('button', { text: 'This one', 'data-product': product.id,
              onclick: function () { choose(photo, product.id); } }));
            results.appendChild(row);
          });
          if (!results.children.length) { results.appendChild(el('li', { class: 'muted', text: 'No product found' })); }
          resize();
        }, showError);
      }, 250);
    });
    holder.appendChild(el('div', { class: 'search' }, [input, results]));
    input.focus();
    resize();
  }

  function labelLine(photo) {
    var label = photo.label;
    if (!label) { return null; }
    var what = label.verdict === 'not_in_catalog' ? 'Not in catalog'
      : label.verdict === 'unusable' ? 'Photo unusable'
        : 'This one: ' + (state.names[label.product_id] || label.product_id);
    var who = label.agent_name || label.agent_email || label.given_by || 'someone';
    return el('div', { class: 'label' }, [
      el('span', { text: what + ' (' + who + ') ' }),
      el('button', { text: 'Undo', onclick: function () {
        api('DELETE', '/v1/jobs/' + photo.job_id + '/feedback').then(load, showError);
      } })
    ]);
  }

  function completeBody(photo, card) {
    var list = el('ul', { class: 'products' });
    photo.matches.forEach(function (match, i) {
      var row = productRow(match, 'score ' + match.score.toFixed(2));
      if (i === 0 && photo.band) {
        row.querySelector('.what').appendChild(bandChip(photo.band, photo.confidence));
      }
      row.appendChild(el('button', { text: 'This one', 'data-product': match.product_id,
        onclick: function () { choose(photo, match.product_id); } }));
      list.appendChild(row);
    });
    card.appendChild(list);
    if (!photo.matches.length) { card.appendChild(el('p', { class: 'muted', text: 'No product found.' })); }
    var advice = (photo.quality && photo.quality.advice) || [];
    if (advice.length) {
      card.appendChild(el('ul', { class: 'advice' }, advice.map(function (a) { return el('li', { text: a }); })));
    }
    var actions = el('div', { class: 'actions' });
    actions.appendChild(el('button', { text: 'Other…', onclick: function () {
      if (!card.querySelector('.search')) { searchBox(photo, card); }
    } }));
    actions.appendChild(el('button', { text: 'Not in catalog', onclick: function () {
      sendFeedback(photo, 'not_in_catalog', null);
    } }));
    card.appendChild(actions);
    var label = labelLine(photo);
    if (label) { card.appendChild(label); }
  }

  function photoCard(photo) {
    var status = photo.status === 'pending' ? 'processing' : (photo.status || 'complete');
    var card = el('section', { class: 'photo', 'data-job': String(photo.job_id), 'data-status': status });
    var chip = el('span', { class: 'status ' + status, text: STATUS_TEXT[photo.status] || status });
    card.appendChild(el('div', { class: 'photo-head' }, [
      picture(photo.thumbnail, '', 'Photo ' + photo.job_id),
      el('div', { class: 'what' }, [el('span', { class: 'file', text: photo.file_name || 'Photo ' + photo.job_id }), chip])
    ]));
    if (status === 'failed') {
      // The reason without the error's class name ("PermanentError: download … HTTP 404").
      var reason = (photo.error || 'The photo could not be matched.').replace(/^[A-Za-z]+Error: /, '');
      card.appendChild(el('p', { class: 'error', text: reason }));
      card.appendChild(el('button', { text: 'Retry', onclick: function (event) {
        event.target.disabled = true;
        api('POST', '/v1/jobs/' + photo.job_id + '/retry').then(load, showError);
      } }));
    } else if (status === 'complete') {
      completeBody(photo, card);
    }
    return card;
  }

  function render(data) {
    root.textContent = '';
    var best = el('ul', { class: 'products' });
    data.matches.slice(0, 3).forEach(function (m) {
      best.appendChild(productRow(m, m.photos + (m.photos === 1 ? ' photo' : ' photos')));
    });
    if (data.matches.length) {
      root.appendChild(el('h2', { text: 'Best products for this ticket' }));
      root.appendChild(best);
    }
    root.appendChild(el('h2', { text: 'Photos (' + data.photos.length + ')' }));
    var cards = {};
    data.photos.forEach(function (photo) {
      var signature = JSON.stringify(photo);
      var kept = state.cards[photo.job_id];
      // A card that did not change is kept as it is (an open product search survives a refresh).
      var card = kept && kept.signature === signature ? kept.card : photoCard(photo);
      cards[photo.job_id] = { signature: signature, card: card };
      root.appendChild(card);
    });
    state.cards = cards;
    var consoleUrl = data.console_url || state.apiUrl + '/ui/entities/ticket/' + encodeURIComponent(state.ticketId);
    root.appendChild(el('footer', {}, [el('a', { href: consoleUrl, target: '_blank', rel: 'noopener',
      text: 'Open in the imagematch console' })]));
    var inFlight = data.photos.some(function (p) { return p.status === 'pending' || p.status === 'processing'; });
    schedule(inFlight);
    resize();
  }

  function showEmpty() {
    root.textContent = '';
    state.cards = {};
    root.appendChild(el('p', { class: 'empty', text: 'No photos on this ticket' }));
    resize();
  }

  function showError(error) {
    var box = document.getElementById('failure') || el('p', { id: 'failure', class: 'error' });
    box.textContent = reasonOf(error);
    root.insertBefore(box, root.firstChild);
    resize();
  }

  function schedule(again) {
    clearTimeout(state.timer);
    state.timer = again ? setTimeout(load, POLL_MS) : null;
  }

  function load() {
    return api('GET', '/v1/entities/ticket/' + encodeURIComponent(state.ticketId) + '/matches').then(render,
      function (error) {
        if (error && error.status === 404) { showEmpty(); } else { showError(error); schedule(true); }
      });
  }

  function start() {
    Promise.all([client.metadata(), client.get(['ticket.id', 'currentUser'])]).then(function (answers) {
      state.apiUrl = String(answers[0].settings.api_url || '').replace(/\/+$/, '');
      state.ticketId = answers[1]['ticket.id'];
      var user = answers[1].currentUser || {};
      state.agent = { name: user.name || null, email: user.email || null };
      return load();
    }).catch(showError);
  }

  client.on('app.registered', start);
})();
