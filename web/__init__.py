"""The web app's shared code (Streamlit only here and in the page scripts), one module per concern:

- `engine`  the engine's lifecycle: opened once per process, built from the page only when allowed
- `grid`    product tiles: thumbnails made once per process and kept as small JPEG data URLs, placeholder tiles, action buttons
- `photos`  a shopper's query photos: allow-listed, capped, decoded once per upload into a small copy
- `errors`  in-page errors: a user's mistake as its message, a bug as a short message with an id
- `layout`  page chrome: tile CSS, the sidebar, session lists, links that reopen a view
- `text`    catalogue and user text shown literally inside markdown
"""
