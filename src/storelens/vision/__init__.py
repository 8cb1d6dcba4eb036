"""Camera video to anonymous tracks on the floor plan, and from them footfall, occupancy,
dwell and heatmaps.

Everything here needs the ``vision`` extra (``pip install 'storelens[vision]'``); modules
import OpenCV, onnxruntime and the tracker lazily so ``import storelens`` stays light.
"""
