# Converts yaml/*.yaml (the TCK as published) to json/*.json, which the
# test reads (the workspace has no YAML crate). `name` and `expression`
# are kept as the text written (YAML 1.1 would read `TRUE` or `-10` as a
# boolean or a number); timestamps stay strings; everything else keeps its
# YAML type. Run from this directory: python3 convert.py
import glob, json, os
import yaml

class Typed(yaml.SafeLoader):
    pass

Typed.add_constructor("tag:yaml.org,2002:timestamp", lambda l, n: l.construct_scalar(n))

for path in sorted(glob.glob("yaml/*.yaml")):
    with open(path) as f:
        text = f.read()
    typed = yaml.load(text, Loader=Typed)
    raw = yaml.load(text, Loader=yaml.BaseLoader)
    typed["name"] = raw["name"]
    for t, r in zip(typed["tests"], raw["tests"]):
        for key in ("name", "expression"):
            if key in r:
                t[key] = r[key]
    out = "json/" + os.path.basename(path)[: -len(".yaml")] + ".json"
    with open(out, "w") as f:
        json.dump(typed, f, indent=2, ensure_ascii=False)
        f.write("\n")
