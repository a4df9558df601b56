"""The Cap'n Proto schemas of the EventDBX control protocol (``control.capnp``, which imports
``admin.capnp``), as server 3.19.4 speaks it. :func:`eventdbx.load_control_schema` loads them
with ``pycapnp`` when it is installed; the client itself does not need them."""
