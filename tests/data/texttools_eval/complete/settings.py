DEFAULTS = {
    "width": 800,
    "height": 600,
    "depth": 24,
<|cursor|>
}
