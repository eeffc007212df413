// Two small deck.gl layers that draw with plain (non-instanced) WebGL points and lines.
//
// Why: deck.gl's stock layers draw every object as an instance of a small mesh. On a GPU that costs nothing, but
// headless Chromium on a machine without one renders with SwiftShader, whose cost per instance is high: 8,000
// ScatterplotLayer instances take ~300 ms a frame there, while 8,000 plain points take a few milliseconds (measured,
// see docs/dashboard.md). These layers keep everything else of deck.gl (projection with 64-bit positions, binary
// attributes, GPU picking, views and controllers) and change only the primitive: one vertex per vehicle drawn as a
// round point sprite of a fixed pixel size, and two vertices per street drawn as a 1-pixel line.

import {Layer, project32, picking} from '@deck.gl/core';
import {Model} from '@luma.gl/engine';

const VS = `\
#version 300 es
#define SHADER_NAME robotaxi-primitive-vs
in vec3 positions;
in vec3 positions64Low;
in vec4 colors;
out vec4 vColor;
void main(void) {
  geometry.worldPosition = positions;
  gl_Position = project_position_to_clipspace(positions, positions64Low, vec3(0.0), geometry.position);
  DECKGL_FILTER_GL_POSITION(gl_Position, geometry);
  gl_PointSize = POINT_SIZE;
  // One vertex per object for points (two for lines: the picking index is then unused).
  geometry.pickingColor = picking_getPickingColorFromIndex(float(gl_VertexID));
  vColor = vec4(colors.rgb, colors.a * layer.opacity);
  DECKGL_FILTER_COLOR(vColor, geometry);
}
`;

const FS = `\
#version 300 es
#define SHADER_NAME robotaxi-primitive-fs
precision highp float;
in vec4 vColor;
out vec4 fragColor;
void main(void) {
#ifdef ROUND
  vec2 uv = gl_PointCoord * 2.0 - 1.0;
  float r = length(uv);
  if (r > 1.0) discard;
#ifdef RING
  // A ring with a faint fill: the whole disc stays clickable.
  float edge = smoothstep(0.55, 0.7, r);
  fragColor = vec4(vColor.rgb, vColor.a * mix(0.2, 1.0, edge));
#else
  fragColor = vec4(vColor.rgb, vColor.a * (1.0 - smoothstep(0.75, 1.0, r)));
#endif
#else
  fragColor = vColor;
#endif
  DECKGL_FILTER_COLOR(fragColor, geometry);
}
`;

class PrimitiveLayer extends Layer {
  getShaders() {
    const defines = {POINT_SIZE: this.props.pointSize.toFixed(1)};
    if (this.topology() === 'point-list') defines.ROUND = 1;
    if (this.props.ring) defines.RING = 1;
    return super.getShaders({vs: VS, fs: FS, defines, modules: [project32, picking]});
  }

  initializeState() {
    this.getAttributeManager().add({
      positions: {size: 3, type: 'float64', fp64: this.use64bitPositions(), accessor: 'getPosition'},
      colors: {size: 4, type: 'unorm8', accessor: 'getColor', defaultValue: [0, 0, 0, 255]},
    });
  }

  updateState(params) {
    super.updateState(params);
    const {props, oldProps, changeFlags} = params;
    if (!this.state.model || changeFlags.extensionsChanged || props.pointSize !== oldProps.pointSize) {
      this.state.model?.destroy();
      this.state.model = this._getModel();
      this.getAttributeManager().invalidateAll();
    }
  }

  draw() {
    const model = this.state.model;
    model.setVertexCount(this.getNumInstances());
    model.draw(this.context.renderPass);
  }

  _getModel() {
    return new Model(this.context.device, {
      ...this.getShaders(),
      id: this.props.id,
      bufferLayout: this.getAttributeManager().getBufferLayouts(),
      topology: this.topology(),
      vertexCount: 0,
      isInstanced: false,
    });
  }
}

PrimitiveLayer.layerName = 'RobotaxiPrimitiveLayer';
PrimitiveLayer.defaultProps = {
  getPosition: {type: 'accessor', value: (d) => d.position},
  getColor: {type: 'accessor', value: [0, 0, 0, 255]},
  pointSize: 5,
  ring: false,
};

/** Objects as round points of `pointSize` pixels (diameter); `ring: true` draws rings with a faint fill. */
export class PointsLayer extends PrimitiveLayer {
  topology() {
    return 'point-list';
  }
}
PointsLayer.layerName = 'RobotaxiPointsLayer';

/** Line segments, 1 pixel wide: the data holds two vertices per segment. */
export class SegmentsLayer extends PrimitiveLayer {
  topology() {
    return 'line-list';
  }
}
SegmentsLayer.layerName = 'RobotaxiSegmentsLayer';
