"""What runs in or around a student's kernel: its life (``lifecycle``), how it is set up, warmed
ahead and sandboxed (``setup``, ``warm``, ``sandbox``, ``diskquota``), its environments and the
offline store (``envs``, ``store``), the platforms it emulates, and the code that runs inside it
(``runtime``, ``probe_runtime``; standard library only at import)."""
